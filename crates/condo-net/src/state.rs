//! What Condo remembers about its networks: one JSON file per network in the state dir,
//! written with an atomic rename under a file lock, read back after a restart.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cidr::IpNet;
use crate::firewall::Protocol;

/// Why the state dir could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("network state {path}: {source}")]
    Io {
        /// The file or dir.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A state file is not valid JSON of the expected shape.
    #[error("network state {path}: invalid json: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// A network as stored: its settings and its leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The network's name.
    pub name: String,
    /// The bridge device.
    pub bridge: String,
    /// The IPv4 subnet.
    pub subnet: IpNet,
    /// The IPv4 gateway on the bridge.
    pub gateway: Ipv4Addr,
    /// The optional IPv6 subnet.
    pub subnet6: Option<IpNet>,
    /// The IPv6 gateway, present with `subnet6`.
    pub gateway6: Option<Ipv6Addr>,
    /// Whether the network has no way out (no NAT, no forwarding off the bridge).
    pub internal: bool,
    /// The MTU of the bridge and veths, if not the kernel's default.
    pub mtu: Option<u32>,
    /// Leases by container id.
    pub leases: BTreeMap<String, Lease>,
    /// Who owns the network (a tenant, for the manager); free-form.
    #[serde(default)]
    pub owner: Option<String>,
    /// Counts attaches, so a container attached again gets a veth of a new name even while
    /// the previous one is still going away.
    #[serde(default)]
    pub serial: u64,
    /// Veths of released containers that the kernel has not removed yet (their addresses stay
    /// taken until it has).
    #[serde(default)]
    pub draining: Vec<Draining>,
    /// Traffic of containers that left the network, by container id, taken up again when they
    /// come back within the same month.
    #[serde(default)]
    pub meters: BTreeMap<String, AllowanceUsage>,
}

/// The host end of a released container's veth, left to go away with its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draining {
    /// The host veth.
    pub host_veth: String,
    /// The address the container had.
    pub ipv4: Ipv4Addr,
    /// Its IPv6 address, on dual-stack networks.
    pub ipv6: Option<Ipv6Addr>,
    /// When it was released (seconds since the epoch).
    pub since: u64,
}

/// Rate limits of one container in bits per second; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Traffic towards the container.
    pub ingress_bps: Option<u64>,
    /// Traffic from the container.
    pub egress_bps: Option<u64>,
}

/// What happens once a container has used its monthly allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowancePolicy {
    /// Both directions are limited to this many bits per second until the month ends.
    Throttle {
        /// The rate in bits per second.
        bps: u64,
    },
    /// All traffic is dropped until the month ends.
    Stop,
}

/// A monthly transfer allowance (bytes in both directions together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    /// Bytes allowed per calendar month (UTC).
    pub bytes_per_month: u64,
    /// What happens when they are used up.
    pub policy: AllowancePolicy,
}

/// Where a container stands against its allowance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AllowanceUsage {
    /// The month counted, as `YYYY-MM`.
    pub period: String,
    /// Bytes counted in earlier veth lifetimes of this month.
    pub carried: u64,
    /// The veth counter total at the start of the period (or when the veth appeared).
    pub baseline: u64,
    /// Whether the policy is in force.
    pub exceeded: bool,
}

/// A published port as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The host address, `None` for all of them.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// tcp or udp.
    pub protocol: Protocol,
}

/// One container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The container id.
    pub container: String,
    /// The DNS name of the container on the network.
    pub hostname: String,
    /// More DNS names.
    pub aliases: Vec<String>,
    /// The IPv4 address.
    pub ipv4: Ipv4Addr,
    /// The IPv6 address, on dual-stack networks.
    pub ipv6: Option<Ipv6Addr>,
    /// The host end of the veth pair.
    pub host_veth: String,
    /// Rate limits in force.
    pub rate: RateLimit,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// The monthly allowance, if any.
    pub allowance: Option<Allowance>,
    /// Traffic this month, metered whether or not there is an allowance.
    pub usage: AllowanceUsage,
    /// All its traffic is stopped from outside its own allowance (its owner's monthly traffic
    /// is used up) until [`crate::Networks::set_held`] lifts it.
    #[serde(default)]
    pub held: bool,
}

impl NetworkRecord {
    /// Every address in use on the network (gateways, leases and veths still going away).
    pub fn used(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = vec![IpAddr::V4(self.gateway)];
        v.extend(self.gateway6.map(IpAddr::V6));
        let held = self
            .leases
            .values()
            .map(|l| (l.ipv4, l.ipv6))
            .chain(self.draining.iter().map(|d| (d.ipv4, d.ipv6)));
        for (a4, a6) in held {
            v.push(IpAddr::V4(a4));
            v.extend(a6.map(IpAddr::V6));
        }
        v
    }
}

/// The state dir: `networks/<name>.json` files and a `lock` file.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    lock: std::sync::Arc<File>,
}

/// Holds the state dir's lock until dropped.
pub struct StateLock {
    file: std::sync::Arc<File>,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&*self.file, rustix::fs::FlockOperation::Unlock);
    }
}

impl StateDir {
    /// Opens (creating if needed) the state dir at `root`.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        let nets = root.join("networks");
        fs::create_dir_all(&nets).map_err(|source| StateError::Io {
            path: nets.clone(),
            source,
        })?;
        let lp = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(|source| StateError::Io { path: lp, source })?;
        Ok(StateDir {
            root: root.to_path_buf(),
            lock: std::sync::Arc::new(lock),
        })
    }

    /// Takes the exclusive lock that every change holds.
    pub fn lock(&self) -> Result<StateLock, StateError> {
        rustix::fs::flock(&*self.lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            StateError::Io {
                path: self.root.join("lock"),
                source: e.into(),
            }
        })?;
        Ok(StateLock {
            file: self.lock.clone(),
        })
    }

    /// The dir's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.root.join("networks").join(format!("{name}.json"))
    }

    /// Reads every stored network.
    pub fn load_all(&self) -> Result<BTreeMap<String, NetworkRecord>, StateError> {
        let dir = self.root.join("networks");
        let rd = fs::read_dir(&dir).map_err(|source| StateError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut out = BTreeMap::new();
        for entry in rd {
            let entry = entry.map_err(|source| StateError::Io {
                path: dir.clone(),
                source,
            })?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "json") {
                let rec = read_record(&p)?;
                out.insert(rec.name.clone(), rec);
            }
        }
        Ok(out)
    }

    /// Reads one stored network, `None` if absent.
    pub fn load(&self, name: &str) -> Result<Option<NetworkRecord>, StateError> {
        let p = self.path_of(name);
        if !p.exists() {
            return Ok(None);
        }
        read_record(&p).map(Some)
    }

    /// Writes a network atomically (temp file, fsync, rename).
    pub fn save(&self, rec: &NetworkRecord) -> Result<(), StateError> {
        self.write(rec, true)
    }

    /// Writes a network whose change is only in its leases: atomically, without waiting for
    /// the disk. A lease matters only while its container lives; a crash of the daemon keeps
    /// what was written (it is in the kernel's cache), and a crash of the host that could lose
    /// it ends every container it names, so no address can be handed out twice.
    pub fn save_leases(&self, rec: &NetworkRecord) -> Result<(), StateError> {
        self.write(rec, false)
    }

    fn write(&self, rec: &NetworkRecord, durable: bool) -> Result<(), StateError> {
        let p = self.path_of(&rec.name);
        let tmp = p.with_extension("json.tmp");
        let io_err = |source| StateError::Io {
            path: tmp.clone(),
            source,
        };
        let data = serde_json::to_vec_pretty(rec).map_err(|source| StateError::Corrupt {
            path: p.clone(),
            source,
        })?;
        let mut f = File::create(&tmp).map_err(io_err)?;
        f.write_all(&data).map_err(io_err)?;
        if durable {
            f.sync_data().map_err(io_err)?;
        }
        fs::rename(&tmp, &p).map_err(|source| StateError::Io {
            path: p.clone(),
            source,
        })
    }

    /// Removes a stored network.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let p = self.path_of(name);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StateError::Io { path: p, source: e })
            }
            _ => Ok(()),
        }
    }
}

fn read_record(p: &Path) -> Result<NetworkRecord, StateError> {
    let data = fs::read(p).map_err(|source| StateError::Io {
        path: p.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| StateError::Corrupt {
        path: p.to_path_buf(),
        source,
    })
}

/// Picks the lowest free address of `subnet` from offset 2 on (offset 1 is the usual
/// gateway), skipping every address in `used`.
pub fn allocate(subnet: &IpNet, used: &[IpAddr]) -> Option<IpAddr> {
    let taken: std::collections::HashSet<u128> = used
        .iter()
        .filter(|ip| subnet.contains(**ip))
        .map(|ip| subnet.offset(*ip))
        .collect();
    (2..subnet.usable_offsets())
        .filter(|o| !taken.contains(o))
        .find_map(|o| subnet.nth(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_skips_used_and_ends() {
        let n: IpNet = "10.1.0.0/29".parse().unwrap();
        let mut used: Vec<IpAddr> = vec!["10.1.0.1".parse().unwrap()];
        let mut got = Vec::new();
        while let Some(ip) = allocate(&n, &used) {
            used.push(ip);
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
        );
        used.retain(|ip| ip.to_string() != "10.1.0.4");
        assert_eq!(allocate(&n, &used).unwrap().to_string(), "10.1.0.4");
    }
}
