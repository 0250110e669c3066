//! Attaching a container to a network (veth pair, address, routes, DNS name) and detaching.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{invalid, Error, Result};
use crate::manager::{Networks, Undo};
use crate::netlink::Netlink;
use crate::spec::{check_name, short_hash, Netns};
use crate::state::{allocate, AllowanceUsage, Draining, Lease, NetworkRecord, RateLimit};

/// Seconds a released container's veth may take to go away with its namespace before it is
/// deleted outright.
pub const DRAIN_LIMIT_SECS: u64 = 10;

/// The container's hardware address, made from its IPv4 address (locally administered): a
/// container that gets an address again gets the same MAC, so the bridge's and its peers'
/// neighbour caches stay right and it is reachable at once.
pub(crate) fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0xc0, o[0], o[1], o[2], o[3]]
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What to attach.
#[derive(Debug)]
pub struct AttachRequest {
    /// The container id.
    pub container: String,
    /// The container's DNS name on the network (a label: letters, digits, '-').
    pub hostname: String,
    /// More DNS names.
    pub aliases: Vec<String>,
    /// The container's network namespace.
    pub netns: Netns,
}

/// The result of an attach: what the container was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The network.
    pub network: String,
    /// The container's IPv4 address.
    pub ipv4: Ipv4Addr,
    /// The subnet prefix length.
    pub prefix: u8,
    /// The gateway (and DNS server).
    pub gateway: Ipv4Addr,
    /// The IPv6 address on dual-stack networks.
    pub ipv6: Option<Ipv6Addr>,
    /// The host end of the veth pair.
    pub host_veth: String,
    /// The interface name inside the container.
    pub interface: String,
}

fn check_label(field: &'static str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{s:?} is not a DNS label (letters, digits, '-')"),
        ))
    }
}

impl Networks {
    /// Attaches a container: leases an address, creates the veth pair with `eth0` inside the
    /// container's namespace, sets addresses, lo and the default route, and publishes its name.
    pub fn attach(&mut self, network: &str, req: &AttachRequest) -> Result<Attachment> {
        check_name("container", &req.container, 128)?;
        check_label("hostname", &req.hostname)?;
        for a in &req.aliases {
            check_label("aliases", a)?;
        }
        let ns = req.netns.open()?;
        let _g = self.state.lock()?;
        if let Some(fresh) = self.state.load(network)? {
            self.records.insert(network.to_string(), fresh);
        }
        let mut rec = self.record(network)?.clone();
        self.prune_draining(&mut rec, DRAIN_LIMIT_SECS)?;
        if rec.leases.contains_key(&req.container) {
            return Err(Error::AlreadyAttached {
                network: network.to_string(),
                container: req.container.clone(),
            });
        }
        let used = rec.used();
        let Some(IpAddr::V4(ipv4)) = allocate(&rec.subnet, &used) else {
            return Err(Error::Exhausted(network.to_string()));
        };
        let ipv6 = match rec.subnet6 {
            Some(n) => match allocate(&n, &used) {
                Some(IpAddr::V6(a)) => Some(a),
                _ => return Err(Error::Exhausted(network.to_string())),
            },
            None => None,
        };
        let serial = rec.serial.to_string();
        let host_veth = format!(
            "cv{}",
            &short_hash(&[network, &req.container, &serial])[..11]
        );
        let period = crate::traffic::current_period();
        let earlier = rec
            .meters
            .get(&req.container)
            .filter(|m| m.period == period)
            .cloned()
            .unwrap_or(AllowanceUsage {
                period,
                ..Default::default()
            });
        let lease = Lease {
            container: req.container.clone(),
            hostname: req.hostname.clone(),
            aliases: req.aliases.clone(),
            ipv4,
            ipv6,
            host_veth: host_veth.clone(),
            rate: RateLimit::default(),
            ports: Vec::new(),
            allowance: None,
            // What the container moved earlier this month, on an earlier attach; the new
            // veth counts from 0.
            usage: AllowanceUsage {
                baseline: 0,
                ..earlier
            },
            held: false,
        };
        let mut next = rec.clone();
        next.meters.remove(&req.container);
        next.serial += 1;
        next.leases.insert(req.container.clone(), lease);
        let mut undo = vec![Undo::RestoreRecord(Box::new(rec.clone()))];
        let res = (|| -> Result<()> {
            // The lease is recorded before the address is used anywhere.
            self.state.save_leases(&next)?;
            self.records.insert(network.to_string(), next.clone());
            let bridge = self
                .nl
                .link_index(&rec.bridge)?
                .ok_or_else(|| invalid("network", format!("bridge {} is missing", rec.bridge)))?;
            self.nl
                .create_veth(&host_veth, bridge, "eth0", mac_of(ipv4), ns.fd(), rec.mtu)?;
            undo.push(Undo::DeleteLink(host_veth.clone()));
            let mut inner = Netlink::open_in(ns.fd()).map_err(|source| Error::Netns {
                what: format!("of container {}", req.container),
                source,
            })?;
            let eth0 = inner
                .link_index("eth0")?
                .ok_or_else(|| invalid("netns", "eth0 vanished from the container"))?;
            inner.add_address(eth0, IpAddr::V4(ipv4), rec.subnet.prefix())?;
            inner.set_up(eth0, "eth0")?;
            if let (Some(a), Some(n)) = (ipv6, rec.subnet6) {
                inner.add_address(eth0, IpAddr::V6(a), n.prefix())?;
            }
            if let Some(lo) = inner.link_index("lo")? {
                inner.set_up(lo, "lo")?;
            }
            inner.add_default_route(eth0, IpAddr::V4(rec.gateway))?;
            if let Some(g6) = rec.gateway6 {
                inner.add_default_route(eth0, IpAddr::V6(g6))?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            self.run_undo(undo);
            return Err(e);
        }
        if let Some(z) = self.zones.get(network) {
            let mut addrs = vec![IpAddr::V4(ipv4)];
            addrs.extend(ipv6.map(IpAddr::V6));
            for n in std::iter::once(&req.hostname).chain(&req.aliases) {
                z.insert(n, addrs.clone());
            }
        }
        tracing::debug!(network, container = %req.container, %ipv4, "container attached");
        Ok(Attachment {
            network: network.to_string(),
            ipv4,
            prefix: rec.subnet.prefix(),
            gateway: rec.gateway,
            ipv6,
            host_veth,
            interface: "eth0".into(),
        })
    }

    /// Detaches a container whose network namespace lives on: removes its veth pair (and
    /// ifb), rules, name and lease, and waits for the kernel to delete the link.
    pub fn detach(&mut self, network: &str, container: &str) -> Result<()> {
        self.remove_lease(network, container, true)
    }

    /// Releases a container whose network namespace is going away (its last process has
    /// ended and the caller drops its last reference): rules, name, lease and ifb go now; the
    /// veth pair goes with the namespace, in the kernel's own batched cleanup, instead of
    /// blocking here on a link deletion. Its address stays taken until the veth has gone, and
    /// a veth still there after [`DRAIN_LIMIT_SECS`] is deleted by the next attach or
    /// [`Networks::settle`].
    pub fn release(&mut self, network: &str, container: &str) -> Result<()> {
        self.remove_lease(network, container, false)
    }

    fn remove_lease(&mut self, network: &str, container: &str, delete_veth: bool) -> Result<()> {
        let _g = self.state.lock()?;
        if let Some(fresh) = self.state.load(network)? {
            self.records.insert(network.to_string(), fresh);
        }
        let rec = self.record(network)?.clone();
        let Some(lease) = rec.leases.get(container).cloned() else {
            return Err(Error::NotAttached {
                network: network.to_string(),
                container: container.to_string(),
            });
        };
        let had_rules = !lease.ports.is_empty() || lease.usage.exceeded || lease.held;
        let mut next = rec.clone();
        next.leases.remove(container);
        // The month's traffic stays counted after the veth goes.
        let c = self.nl.counters(&lease.host_veth)?.unwrap_or_default();
        let mut usage = lease.usage.clone();
        if usage.period == crate::traffic::current_period() {
            usage.carried += (c.rx_bytes + c.tx_bytes).saturating_sub(usage.baseline);
            usage.baseline = 0;
            next.meters.insert(container.to_string(), usage);
        }
        if !delete_veth {
            next.draining.push(Draining {
                host_veth: lease.host_veth.clone(),
                ipv4: lease.ipv4,
                ipv6: lease.ipv6,
                since: unix_now(),
            });
        }
        self.records.insert(network.to_string(), next.clone());
        if had_rules {
            if let Err(e) = self.sync_firewall() {
                self.records.insert(network.to_string(), rec);
                return Err(e);
            }
        }
        if delete_veth {
            self.nl.delete_link(&lease.host_veth)?;
        }
        // The ifb exists only while an egress limit (or a throttle) is in force.
        if lease.rate.egress_bps.is_some() || lease.usage.exceeded {
            self.nl
                .delete_link(&crate::traffic::ifb_name(&lease.host_veth))?;
        }
        self.state.save_leases(&next)?;
        if let Some(z) = self.zones.get(network) {
            for n in std::iter::once(&lease.hostname).chain(&lease.aliases) {
                z.remove(n);
            }
        }
        Ok(())
    }

    /// Forgets the released veths the kernel has removed and deletes those older than
    /// `max_age` seconds (their namespace outlived the release); errors leave the rest listed.
    pub(crate) fn prune_draining(&mut self, rec: &mut NetworkRecord, max_age: u64) -> Result<()> {
        let now = unix_now();
        // Many at once: one dump of the links costs less than a request each.
        let present: Option<std::collections::HashSet<String>> = if rec.draining.len() > 8 {
            Some(self.nl.link_names()?.into_iter().collect())
        } else {
            None
        };
        let mut err = None;
        let nl = &mut self.nl;
        rec.draining.retain(|d| {
            if err.is_some() {
                return true;
            }
            let exists = match &present {
                Some(p) => Ok(p.contains(&d.host_veth).then_some(0)),
                None => nl.link_index(&d.host_veth),
            };
            let gone = match exists {
                Ok(None) => Ok(true),
                Ok(Some(_)) if now.saturating_sub(d.since) >= max_age => {
                    tracing::debug!(veth = %d.host_veth, "released veth outlived its namespace");
                    nl.delete_link(&d.host_veth).map(|_| true)
                }
                Ok(Some(_)) => Ok(false),
                Err(e) => Err(e),
            };
            match gone {
                Ok(g) => !g,
                Err(e) => {
                    err = Some(e);
                    true
                }
            }
        });
        match err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Forgets released veths the kernel has removed, deletes those past
    /// [`DRAIN_LIMIT_SECS`], and returns how many are still going away.
    pub fn settle(&mut self) -> Result<usize> {
        let _g = self.state.lock()?;
        let names: Vec<String> = self.records.keys().cloned().collect();
        let mut left = 0;
        for name in names {
            let Some(mut rec) = self.state.load(&name)? else {
                continue;
            };
            if rec.draining.is_empty() {
                continue;
            }
            let before = rec.draining.len();
            self.prune_draining(&mut rec, DRAIN_LIMIT_SECS)?;
            left += rec.draining.len();
            if rec.draining.len() != before {
                self.state.save_leases(&rec)?;
            }
            self.records.insert(name, rec);
        }
        Ok(left)
    }

    /// The lease of a container on a network.
    pub fn lease(&self, network: &str, container: &str) -> Result<&Lease> {
        self.record(network)?
            .leases
            .get(container)
            .ok_or_else(|| Error::NotAttached {
                network: network.to_string(),
                container: container.to_string(),
            })
    }

    /// The /etc/hosts content for a container: itself, localhost and its network's peers.
    pub fn hosts_file(&self, network: &str, container: &str) -> Result<String> {
        let rec = self.record(network)?;
        let me = self.lease(network, container)?;
        let mut out =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        let mut names = vec![me.hostname.clone()];
        names.extend(me.aliases.iter().cloned());
        out.push_str(&format!("{}\t{}\n", me.ipv4, names.join(" ")));
        if let Some(v6) = me.ipv6 {
            out.push_str(&format!("{}\t{}\n", v6, names.join(" ")));
        }
        for l in rec.leases.values().filter(|l| l.container != container) {
            let mut names = vec![l.hostname.clone()];
            names.extend(l.aliases.iter().cloned());
            out.push_str(&format!("{}\t{}\n", l.ipv4, names.join(" ")));
        }
        Ok(out)
    }

    /// The /etc/resolv.conf content for a container of `network`: its gateway's resolver.
    pub fn resolv_conf(&self, network: &str) -> Result<String> {
        let rec = self.record(network)?;
        let mut out = format!("nameserver {}\n", rec.gateway);
        if let Some(g6) = rec.gateway6 {
            out.push_str(&format!("nameserver {g6}\n"));
        }
        out.push_str("options ndots:0\n");
        Ok(out)
    }
}
