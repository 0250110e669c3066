//! [`Networks`]: every network of the host, kept in the state dir and in the kernel.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netlink_packet_route::link::InfoKind;

use crate::cidr::IpNet;
use crate::dns::{DnsServer, Zone};
use crate::error::{invalid, Error, Result};
use crate::firewall::{self, Firewall, FirewallState, NetworkRules, PortRule};
use crate::netlink::Netlink;
use crate::spec::{check_name, short_hash, NetworkSpec, PortPolicy};
use crate::state::{AllowancePolicy, NetworkRecord, StateDir};
use crate::tc::TrafficControl;

/// How [`Networks`] is set up.
pub struct Options {
    /// Where networks and leases are stored.
    pub state_dir: PathBuf,
    /// Which ports may be published.
    pub port_policy: PortPolicy,
    /// Where the DNS servers forward names they do not know; the host's resolv.conf when
    /// `None`.
    pub dns_upstreams: Option<Vec<SocketAddr>>,
    /// Applies the nftables table.
    pub firewall: Arc<dyn Firewall>,
    /// Applies rate limits.
    pub tc: Arc<dyn TrafficControl>,
}

/// One step to take back when an operation fails part way.
pub(crate) enum Undo {
    DeleteLink(String),
    DropRecord(String),
    RestoreRecord(Box<NetworkRecord>),
    SyncFirewall,
}

/// The networks of this host: bridges, leases, rules, rate limits and DNS.
pub struct Networks {
    pub(crate) state: StateDir,
    pub(crate) records: BTreeMap<String, NetworkRecord>,
    pub(crate) zones: HashMap<String, Arc<Zone>>,
    pub(crate) dns: HashMap<String, DnsServer>,
    pub(crate) nl: Netlink,
    pub(crate) fw: Arc<dyn Firewall>,
    pub(crate) tc: Arc<dyn TrafficControl>,
    pub(crate) policy: PortPolicy,
    upstreams: Option<Vec<SocketAddr>>,
}

/// A network as shown to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The name.
    pub name: String,
    /// The bridge device.
    pub bridge: String,
    /// The IPv4 subnet.
    pub subnet: IpNet,
    /// The IPv4 gateway.
    pub gateway: IpAddr,
    /// The IPv6 subnet.
    pub subnet6: Option<IpNet>,
    /// The IPv6 gateway.
    pub gateway6: Option<IpAddr>,
    /// Whether the network has no way out.
    pub internal: bool,
    /// The MTU, if not the kernel's default.
    pub mtu: Option<u32>,
    /// The owner given at creation.
    pub owner: Option<String>,
    /// Attached container ids.
    pub containers: Vec<String>,
}

impl From<&NetworkRecord> for NetworkInfo {
    fn from(r: &NetworkRecord) -> Self {
        NetworkInfo {
            name: r.name.clone(),
            bridge: r.bridge.clone(),
            subnet: r.subnet,
            gateway: IpAddr::V4(r.gateway),
            subnet6: r.subnet6,
            gateway6: r.gateway6.map(IpAddr::V6),
            internal: r.internal,
            mtu: r.mtu,
            owner: r.owner.clone(),
            containers: r.leases.keys().cloned().collect(),
        }
    }
}

pub(crate) fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::Sysctl {
        path: PathBuf::from(path),
        source,
    })
}

impl Networks {
    /// Opens the state dir, brings back every stored network (bridge, addresses, rules).
    pub fn open(opts: Options) -> Result<Self> {
        let state = StateDir::open(&opts.state_dir)?;
        let nl = Netlink::open().map_err(|source| Error::Netns {
            what: "of condo (netlink socket)".into(),
            source,
        })?;
        let mut me = Networks {
            state,
            records: BTreeMap::new(),
            zones: HashMap::new(),
            dns: HashMap::new(),
            nl,
            fw: opts.firewall,
            tc: opts.tc,
            policy: opts.port_policy,
            upstreams: opts.dns_upstreams,
        };
        let _g = me.state.lock()?;
        me.records = me.state.load_all()?;
        let recs: Vec<NetworkRecord> = me.records.values().cloned().collect();
        for rec in &recs {
            me.ensure_bridge(rec)?;
            let zone = Arc::new(Zone::default());
            for l in rec.leases.values() {
                for name in std::iter::once(&l.hostname).chain(&l.aliases) {
                    let mut addrs = vec![IpAddr::V4(l.ipv4)];
                    addrs.extend(l.ipv6.map(IpAddr::V6));
                    zone.insert(name, addrs);
                }
            }
            me.zones.insert(rec.name.clone(), zone);
        }
        drop(_g);
        if !me.records.is_empty() {
            me.sync_firewall()?;
        }
        Ok(me)
    }

    /// The port policy in force.
    pub fn port_policy(&self) -> &PortPolicy {
        &self.policy
    }

    /// The state dir.
    pub fn state_dir(&self) -> &Path {
        self.state.root()
    }

    /// Every network.
    pub fn list(&self) -> Vec<NetworkInfo> {
        self.records.values().map(NetworkInfo::from).collect()
    }

    /// One network.
    pub fn get(&self, name: &str) -> Result<NetworkInfo> {
        self.record(name).map(NetworkInfo::from)
    }

    pub(crate) fn record(&self, name: &str) -> Result<&NetworkRecord> {
        self.records
            .get(name)
            .ok_or_else(|| Error::NoNetwork(name.to_string()))
    }

    /// Creates a bridge with its gateway addresses when it is missing (after a host reboot).
    fn ensure_bridge(&mut self, rec: &NetworkRecord) -> Result<()> {
        if self.nl.link_index(&rec.bridge)?.is_some() {
            return Ok(());
        }
        let idx = self
            .nl
            .create_link(&rec.bridge, InfoKind::Bridge, rec.mtu)?;
        let res = (|| {
            self.nl
                .add_address(idx, IpAddr::V4(rec.gateway), rec.subnet.prefix())?;
            if let (Some(gw6), Some(net6)) = (rec.gateway6, rec.subnet6) {
                self.nl.add_address(idx, IpAddr::V6(gw6), net6.prefix())?;
            }
            write_sysctl(
                &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", rec.bridge),
                "1",
            )?;
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
            if rec.subnet6.is_some() {
                write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = self.nl.delete_link(&rec.bridge);
        }
        res
    }

    /// Checks a spec against the existing networks and turns it into a record.
    fn validate(&self, spec: &NetworkSpec) -> Result<NetworkRecord> {
        check_name("name", &spec.name, 32)?;
        if self.records.contains_key(&spec.name) {
            return Err(Error::NetworkExists(spec.name.clone()));
        }
        let subnet: IpNet = spec
            .subnet
            .parse()
            .map_err(|e| invalid("subnet", format!("{e}")))?;
        if !subnet.is_ipv4() || subnet.prefix() < 8 || subnet.prefix() > 30 {
            return Err(invalid(
                "subnet",
                format!("{subnet} must be an IPv4 subnet from /8 to /30"),
            ));
        }
        let gateway = match &spec.gateway {
            Some(g) => g
                .parse::<IpAddr>()
                .map_err(|_| invalid("gateway", format!("{g:?} is not an IP address")))?,
            None => subnet
                .nth(1)
                .ok_or_else(|| invalid("subnet", "too small"))?,
        };
        let IpAddr::V4(gateway4) = gateway else {
            return Err(invalid("gateway", format!("{gateway} is not IPv4")));
        };
        if !subnet.contains(gateway) {
            return Err(invalid(
                "gateway",
                format!("{gateway} is outside subnet {subnet}"),
            ));
        }
        let off = subnet.offset(gateway);
        if off == 0 || subnet.nth(off).is_none() {
            return Err(invalid(
                "gateway",
                format!("{gateway} is the network or broadcast address of {subnet}"),
            ));
        }
        let (subnet6, gateway6) = match &spec.subnet6 {
            None => (None, None),
            Some(s) => {
                let n: IpNet = s.parse().map_err(|e| invalid("subnet6", format!("{e}")))?;
                if n.is_ipv4() || n.prefix() < 64 || n.prefix() > 120 {
                    return Err(invalid("subnet6", format!("{n} must be IPv6, /64 to /120")));
                }
                let g = match &spec.gateway6 {
                    Some(g) => g
                        .parse::<IpAddr>()
                        .map_err(|_| invalid("gateway6", format!("{g:?} is not an IP address")))?,
                    None => n.nth(1).ok_or_else(|| invalid("subnet6", "too small"))?,
                };
                let IpAddr::V6(g6) = g else {
                    return Err(invalid("gateway6", format!("{g} is not IPv6")));
                };
                if !n.contains(g) || n.offset(g) == 0 {
                    return Err(invalid("gateway6", format!("{g} is outside subnet {n}")));
                }
                (Some(n), Some(g6))
            }
        };
        for other in self.records.values() {
            let clash = other.subnet.overlaps(&subnet)
                || matches!((other.subnet6, subnet6), (Some(a), Some(b)) if a.overlaps(&b));
            if clash {
                let field = if other.subnet.overlaps(&subnet) {
                    "subnet"
                } else {
                    "subnet6"
                };
                return Err(invalid(
                    field,
                    format!("overlaps network {:?} ({})", other.name, other.subnet),
                ));
            }
        }
        let bridge = match &spec.bridge {
            Some(b) => b.clone(),
            None if spec.name.len() <= 12 => format!("cb-{}", spec.name),
            None => format!("cb-{}", &short_hash(&[&spec.name])[..12]),
        };
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ', ':']) {
            return Err(invalid(
                "bridge",
                format!("{bridge:?} is not a valid interface name"),
            ));
        }
        if self.records.values().any(|r| r.bridge == bridge) {
            return Err(invalid(
                "bridge",
                format!("{bridge:?} is used by another network"),
            ));
        }
        if let Some(mtu) = spec.mtu {
            if !(576..=65535).contains(&mtu) {
                return Err(invalid(
                    "mtu",
                    format!("{mtu} is not between 576 and 65535"),
                ));
            }
        }
        Ok(NetworkRecord {
            name: spec.name.clone(),
            bridge,
            subnet,
            gateway: gateway4,
            subnet6,
            gateway6,
            internal: spec.internal,
            mtu: spec.mtu,
            leases: BTreeMap::new(),
            owner: spec.owner.clone(),
            serial: 0,
            draining: Vec::new(),
            meters: BTreeMap::new(),
        })
    }

    /// Creates a network: its bridge, gateway addresses, state file and rules.
    pub fn create_network(&mut self, spec: &NetworkSpec) -> Result<NetworkInfo> {
        let _g = self.state.lock()?;
        self.records = self.state.load_all()?;
        let rec = self.validate(spec)?;
        if self.nl.link_index(&rec.bridge)?.is_some() {
            return Err(invalid(
                "bridge",
                format!("a link called {:?} exists", rec.bridge),
            ));
        }
        let mut undo = Vec::new();
        let res = (|| {
            self.ensure_bridge(&rec)?;
            undo.push(Undo::DeleteLink(rec.bridge.clone()));
            self.state.save(&rec)?;
            undo.push(Undo::DropRecord(rec.name.clone()));
            self.records.insert(rec.name.clone(), rec.clone());
            undo.push(Undo::SyncFirewall);
            self.sync_firewall()
        })();
        if let Err(e) = res {
            self.run_undo(undo);
            return Err(e);
        }
        self.zones
            .insert(rec.name.clone(), Arc::new(Zone::default()));
        tracing::info!(network = %rec.name, bridge = %rec.bridge, "network created");
        Ok(NetworkInfo::from(&rec))
    }

    /// Removes an empty network: DNS server, rules, bridge and state file.
    pub fn remove_network(&mut self, name: &str) -> Result<()> {
        let _g = self.state.lock()?;
        let mut rec = self.record(name)?.clone();
        if !rec.leases.is_empty() {
            return Err(Error::NetworkInUse {
                network: name.to_string(),
                count: rec.leases.len(),
            });
        }
        // Released veths whose namespace still lives would outlast the record: delete them.
        self.prune_draining(&mut rec, 0)?;
        if let Some(s) = self.dns.remove(name) {
            s.stop();
        }
        self.records.remove(name);
        if let Err(e) = self.sync_firewall() {
            self.records.insert(name.to_string(), rec);
            return Err(e);
        }
        self.nl.delete_link(&rec.bridge)?;
        self.state.remove(name)?;
        self.zones.remove(name);
        Ok(())
    }

    /// Takes back what a failed operation did, newest first; errors are logged only.
    pub(crate) fn run_undo(&mut self, steps: Vec<Undo>) {
        for step in steps.into_iter().rev() {
            let res = match step {
                Undo::DeleteLink(name) => {
                    self.nl.delete_link(&name).map(|_| ()).map_err(Error::from)
                }
                Undo::DropRecord(name) => {
                    self.records.remove(&name);
                    self.state.remove(&name).map_err(Error::from)
                }
                Undo::RestoreRecord(rec) => {
                    let r = self.state.save(&rec).map_err(Error::from);
                    self.records.insert(rec.name.clone(), *rec);
                    r
                }
                Undo::SyncFirewall => self.sync_firewall(),
            };
            if let Err(e) = res {
                tracing::warn!(error = %e, "undo step failed");
            }
        }
    }

    /// What the nftables table must hold now.
    pub fn firewall_state(&self) -> FirewallState {
        let mut st = FirewallState::default();
        for r in self.records.values() {
            st.networks.push(NetworkRules {
                bridge: r.bridge.clone(),
                subnet: r.subnet,
                gateway: IpAddr::V4(r.gateway),
                subnet6: r.subnet6,
                masquerade: !r.internal,
            });
            for l in r.leases.values() {
                for p in &l.ports {
                    st.ports.push(PortRule {
                        host_ip: p.host_ip,
                        host_port: p.host_port,
                        protocol: p.protocol,
                        target: l.ipv4,
                        target_port: p.container_port,
                    });
                }
                let stop = l.held
                    || (l.usage.exceeded
                        && matches!(l.allowance.map(|a| a.policy), Some(AllowancePolicy::Stop)));
                if stop {
                    st.stopped.push(IpAddr::V4(l.ipv4));
                    st.stopped.extend(l.ipv6.map(IpAddr::V6));
                }
            }
        }
        st
    }

    /// Replaces the nftables table with what the state asks for.
    pub fn sync_firewall(&self) -> Result<()> {
        self.fw.apply(&firewall::ruleset(&self.firewall_state()))?;
        Ok(())
    }

    /// The DNS zone of a network (its containers' names).
    pub fn zone(&self, network: &str) -> Result<Arc<Zone>> {
        self.zones
            .get(network)
            .cloned()
            .ok_or_else(|| Error::NoNetwork(network.to_string()))
    }

    /// Starts the network's resolver on its gateway address, port 53.
    pub fn start_dns(&mut self, network: &str) -> Result<SocketAddr> {
        self.start_dns_on(network, 53)
    }

    /// Starts the network's resolver on its gateway address and `port`.
    pub fn start_dns_on(&mut self, network: &str, port: u16) -> Result<SocketAddr> {
        if let Some(s) = self.dns.get(network) {
            return Ok(s.local_addr());
        }
        let rec = self.record(network)?;
        let addr = SocketAddr::new(IpAddr::V4(rec.gateway), port);
        let ups = match &self.upstreams {
            Some(u) => u.clone(),
            None => crate::dns::upstreams_from_resolv_conf(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ),
        };
        let server =
            DnsServer::start(addr, self.zone(network)?, ups).map_err(|source| Error::Dns {
                addr: addr.to_string(),
                source,
            })?;
        let local = server.local_addr();
        self.dns.insert(network.to_string(), server);
        Ok(local)
    }

    /// Stops the network's resolver, if running.
    pub fn stop_dns(&mut self, network: &str) {
        if let Some(s) = self.dns.remove(network) {
            s.stop();
        }
    }
}
