//! What the admin asks for: network settings, the port policy, a container's namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cidr::IpNet;
use crate::error::{invalid, Error, Result};
use crate::firewall::Protocol;

/// The settings of a new network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The name: 1–32 of `a-z 0-9 - _`, starting with a letter or digit.
    pub name: String,
    /// The IPv4 subnet in CIDR notation, prefix /8 to /30.
    pub subnet: String,
    /// The IPv4 gateway; the subnet's first address when absent.
    pub gateway: Option<String>,
    /// An optional IPv6 subnet (prefix /64 to /120).
    pub subnet6: Option<String>,
    /// The IPv6 gateway; the subnet's first address when absent.
    pub gateway6: Option<String>,
    /// A network without a way out: no NAT, nothing forwarded off the bridge.
    pub internal: bool,
    /// The MTU of the bridge and veths.
    pub mtu: Option<u32>,
    /// The bridge's name; `cb-<name>` (or a hash when too long) when absent.
    pub bridge: Option<String>,
    /// Who owns the network (the manager's tenant); kept and shown, not interpreted.
    pub owner: Option<String>,
}

/// A port to publish: a host address and port forwarded to the container's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The host address; `None` publishes on every local address, 127.0.0.1 included.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// tcp or udp.
    pub protocol: Protocol,
}

/// Which ports the admin lets containers publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPolicy {
    /// Host addresses (as subnets) that may be named; empty allows any address.
    pub addresses: Vec<IpNet>,
    /// Whether publishing on every address (`host_ip` absent) is allowed.
    pub wildcard: bool,
    /// Host port ranges allowed.
    pub ports: Vec<RangeInclusive<u16>>,
}

impl Default for PortPolicy {
    fn default() -> Self {
        PortPolicy {
            addresses: Vec::new(),
            wildcard: true,
            ports: vec![1024..=65535],
        }
    }
}

impl PortPolicy {
    /// Checks `p` against the policy.
    pub fn check(&self, p: &PortSpec) -> Result<()> {
        if p.host_port == 0 || p.container_port == 0 {
            let field = if p.host_port == 0 {
                "host_port"
            } else {
                "container_port"
            };
            return Err(invalid(field, "port 0 cannot be published"));
        }
        if !self.ports.iter().any(|r| r.contains(&p.host_port)) {
            return Err(Error::PortDenied {
                field: "host_port",
                reason: format!("port {} is outside the allowed ranges", p.host_port),
            });
        }
        match p.host_ip {
            None if !self.wildcard => Err(Error::PortDenied {
                field: "host_ip",
                reason: "publishing on every address is not allowed".into(),
            }),
            Some(ip)
                if !self.addresses.is_empty()
                    && !self.addresses.iter().any(|n| n.contains(IpAddr::V4(ip))) =>
            {
                Err(Error::PortDenied {
                    field: "host_ip",
                    reason: format!("address {ip} is not in the allowed list"),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A container's network namespace.
#[derive(Debug)]
pub enum Netns {
    /// The namespace of this process id.
    Pid(u32),
    /// An nsfs file (`/proc/<pid>/ns/net` or a bind mount of one).
    Path(PathBuf),
    /// An open nsfs file.
    Fd(OwnedFd),
}

/// An opened namespace, owned or borrowed.
pub(crate) enum NetnsFd<'a> {
    Owned(OwnedFd),
    Borrowed(BorrowedFd<'a>),
}

impl NetnsFd<'_> {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            NetnsFd::Owned(o) => o.as_fd(),
            NetnsFd::Borrowed(b) => *b,
        }
    }
}

impl Netns {
    pub(crate) fn open(&self) -> Result<NetnsFd<'_>> {
        let path = match self {
            Netns::Fd(fd) => return Ok(NetnsFd::Borrowed(fd.as_fd())),
            Netns::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            Netns::Path(p) => p.clone(),
        };
        std::fs::File::open(&path)
            .map(|f| NetnsFd::Owned(f.into()))
            .map_err(|source| Error::Netns {
                what: path.display().to_string(),
                source,
            })
    }
}

/// Checks a network or container name (1–64 of `a-z A-Z 0-9 - _ .`, no leading dot or dash).
pub(crate) fn check_name(field: &'static str, s: &str, max: usize) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if s.is_empty() || s.len() > max {
        return Err(invalid(
            field,
            format!("{s:?} must be 1 to {max} characters"),
        ));
    }
    if !s.chars().all(ok_char) || s.starts_with(['-', '.']) {
        return Err(invalid(
            field,
            format!("{s:?} may hold only letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(())
}

/// A short stable hash (FNV-1a) used to derive interface names.
pub(crate) fn short_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_checks_ports_and_addresses() {
        let mut p = PortPolicy::default();
        let spec = PortSpec {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        p.check(&spec).unwrap();
        let low = PortSpec {
            host_port: 80,
            ..spec
        };
        assert!(p.check(&low).unwrap_err().to_string().contains("host_port"));
        p.wildcard = false;
        assert!(p.check(&spec).unwrap_err().to_string().contains("host_ip"));
        p.addresses = vec!["192.0.2.0/24".parse().unwrap()];
        let bad = PortSpec {
            host_ip: Some("198.51.100.1".parse().unwrap()),
            ..spec
        };
        assert!(p.check(&bad).is_err());
        let good = PortSpec {
            host_ip: Some("192.0.2.7".parse().unwrap()),
            ..spec
        };
        p.check(&good).unwrap();
    }

    #[test]
    fn names_and_hashes() {
        check_name("name", "web-1", 32).unwrap();
        assert!(check_name("name", "", 32).is_err());
        assert!(check_name("name", "a/b", 32).is_err());
        assert!(check_name("name", "-x", 32).is_err());
        assert_eq!(short_hash(&["a", "b"]), short_hash(&["a", "b"]));
        assert_ne!(short_hash(&["a", "b"]), short_hash(&["ab"]));
    }
}
