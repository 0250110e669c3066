//! Networks in the daemon: the condo-net manager (state under `ROOT/network`), one pinned
//! network namespace per running container on a network (`ROOT/netns/ID`, joined by the
//! runtime by path), DNS servers on the gateways, and a periodic allowance check.
//!
//! The periodic check also records each container's traffic of the calendar month in the
//! database (a deleted container's stays counted until the month ends) and stops all traffic of
//! a tenant's containers once their sum reaches the tenant's `monthly_traffic` quota, until the
//! month turns or the admin raises the quota (see [`account`]).
//!
//! A container without a network (the default) gets a namespace of its own from the runtime,
//! with only loopback: no bridge, no NAT, nothing reachable. Networks belong to a tenant;
//! only that tenant's containers can join them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use condo_api::{
    AllowancePolicy, ContainerCreate, Network, NetworkCreate, NetworkEndpoint, PortMapping,
    PortProtocol, RateLimits,
};
use condo_net::{AttachRequest, Netns, NetworkSpec, Networks, PortPolicy, PortSpec, Protocol};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::db::ContainerRow;
use crate::error::{ApiError, ApiResult};
use crate::App;

/// Subnets handed out when a network is created without one: the /24s of this /16.
const AUTO_SUBNETS: [u8; 2] = [10, 89];
/// The throttle rate of an allowance that does not name one.
const DEFAULT_THROTTLE_BPS: u64 = 1_000_000;
/// How often allowances and released veths are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The daemon's networks.
pub struct Hub {
    nets: Mutex<Networks>,
    netns_dir: PathBuf,
    /// Network name → owning tenant. A leaf lock (nothing is locked while it is held), so
    /// the authorisation layer and quota views may read it under the database's lock.
    owners: Mutex<HashMap<String, String>>,
}

/// What a container joining its network brings to its bundle.
#[derive(Debug)]
pub struct Joined {
    /// The pinned namespace the runtime joins.
    pub netns: PathBuf,
    /// The container's /etc/hosts.
    pub hosts: PathBuf,
    /// The container's /etc/resolv.conf.
    pub resolv: PathBuf,
}

/// Turns a library error into an API error naming the field or the thing.
fn api_err(e: condo_net::Error) -> ApiError {
    use condo_net::Error as E;
    match e {
        E::Invalid { field, .. } | E::PortDenied { field, .. } => {
            ApiError::invalid(field, e.to_string())
        }
        E::NoNetwork(ref n) => ApiError::not_found("network", n),
        E::NetworkExists(_) | E::NetworkInUse { .. } | E::PortTaken(_) | E::Exhausted(_) => {
            ApiError::conflict(e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// Parses `RANGE[,RANGE...]` (each `PORT` or `LOW-HIGH`) for `--publish-ports`.
pub fn parse_port_ranges(s: &str) -> Result<Vec<std::ops::RangeInclusive<u16>>, String> {
    s.split(',')
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (u16, u16) = match (a.trim().parse(), b.trim().parse()) {
                (Ok(a), Ok(b)) if a >= 1 && a <= b => (a, b),
                _ => return Err(format!("{r:?} is not a port or LOW-HIGH range")),
            };
            Ok(a..=b)
        })
        .collect()
}

/// The port policy from condod's flags: host port ranges, and host addresses (CIDRs) that may
/// be named; with an address list, publishing on every address is refused.
pub fn port_policy(ports: Option<&str>, addresses: Option<&str>) -> anyhow::Result<PortPolicy> {
    let mut p = PortPolicy::default();
    if let Some(r) = ports {
        p.ports = parse_port_ranges(r).map_err(|e| anyhow::anyhow!("--publish-ports: {e}"))?;
    }
    if let Some(a) = addresses {
        p.addresses = a
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--publish-addresses {c:?}: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        p.wildcard = false;
    }
    Ok(p)
}

/// A DNS label from a container name (`_` and `.` become `-`).
fn dns_label(name: &str) -> String {
    let mut l: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    if l.starts_with('-') {
        l.replace_range(0..1, "c");
    }
    l
}

fn port_spec(p: &PortMapping) -> PortSpec {
    PortSpec {
        host_ip: p.host_ip,
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: match p.protocol {
            PortProtocol::Tcp => Protocol::Tcp,
            PortProtocol::Udp => Protocol::Udp,
        },
    }
}

/// The limits in force: a direction without one gets the tenant's bandwidth quota.
fn capped(r: &RateLimits, bandwidth: Option<u64>) -> RateLimits {
    RateLimits {
        ingress_bps: r.ingress_bps.or(bandwidth),
        egress_bps: r.egress_bps.or(bandwidth),
    }
}

fn rate_limit(r: &RateLimits) -> condo_net::RateLimit {
    condo_net::RateLimit {
        ingress_bps: r.ingress_bps,
        egress_bps: r.egress_bps,
    }
}

/// The network a configuration names, if any (`none` is no network).
pub fn wanted(c: &ContainerCreate) -> Option<&str> {
    c.network.as_deref().filter(|n| *n != "none")
}

impl Hub {
    /// Opens the networks under `root` (bridges and rules come back) and starts their DNS.
    pub fn open(root: &Path, policy: PortPolicy) -> anyhow::Result<Hub> {
        let netns_dir = root.join("netns");
        std::fs::create_dir_all(&netns_dir)?;
        let mut nets = Networks::open(condo_net::Options {
            state_dir: root.join("network"),
            port_policy: policy,
            dns_upstreams: None,
            firewall: Arc::new(condo_net::NftCli::default()),
            tc: Arc::new(condo_net::TcCli::default()),
        })?;
        let mut owners = HashMap::new();
        for n in nets.list() {
            if let Err(e) = nets.start_dns(&n.name) {
                tracing::warn!(network = %n.name, "no DNS: {e}");
            }
            owners.insert(n.name.clone(), n.owner.clone().unwrap_or_default());
        }
        Ok(Hub {
            nets: Mutex::new(nets),
            netns_dir,
            owners: Mutex::new(owners),
        })
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant owning network `name`, if it exists.
    pub fn owner(&self, name: &str) -> Option<String> {
        self.owners().get(name).cloned()
    }

    /// How many networks `tenant` has.
    pub fn networks_of(&self, tenant: &str) -> u64 {
        self.owners().values().filter(|t| *t == tenant).count() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Networks> {
        self.nets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    fn view(nets: &Networks, info: &condo_net::NetworkInfo) -> Network {
        let endpoints = info
            .containers
            .iter()
            .filter_map(|c| endpoint_of(nets, &info.name, c))
            .collect();
        Network {
            name: info.name.clone(),
            tenant: info.owner.clone().unwrap_or_default(),
            bridge: info.bridge.clone(),
            subnet: info.subnet.to_string(),
            gateway: info.gateway.to_string(),
            subnet6: info.subnet6.map(|s| s.to_string()),
            gateway6: info.gateway6.map(|g| g.to_string()),
            internal: info.internal,
            mtu: info.mtu,
            endpoints,
        }
    }

    /// The networks `caller` sees.
    pub fn list(&self, caller: &Caller) -> Vec<Network> {
        let nets = self.lock();
        nets.list()
            .iter()
            .filter(|i| visible(caller, i))
            .map(|i| Self::view(&nets, i))
            .collect()
    }

    /// One network `caller` sees.
    pub fn get(&self, caller: &Caller, name: &str) -> ApiResult<Network> {
        let nets = self.lock();
        match nets.get(name) {
            Ok(i) if visible(caller, &i) => Ok(Self::view(&nets, &i)),
            _ => Err(ApiError::not_found("network", name)),
        }
    }

    /// Creates a network for the caller's tenant and starts its DNS server; `admit` is asked
    /// first with the number of networks the tenant has (the quota check).
    pub fn create(
        &self,
        caller: &Caller,
        req: &NetworkCreate,
        admit: impl FnOnce(u64) -> ApiResult<()>,
    ) -> ApiResult<Network> {
        let mut nets = self.lock();
        admit(self.networks_of(caller.tenant()))?;
        let subnet = match &req.subnet {
            Some(s) => s.clone(),
            None => free_subnet(&nets).ok_or_else(|| {
                ApiError::conflict("no free /24 left in 10.89.0.0/16: give a subnet")
            })?,
        };
        let spec = NetworkSpec {
            name: req.name.clone(),
            subnet,
            gateway: req.gateway.clone(),
            subnet6: req.subnet6.clone(),
            gateway6: None,
            internal: req.internal,
            mtu: req.mtu,
            bridge: None,
            owner: Some(caller.tenant().to_string()),
        };
        let info = nets.create_network(&spec).map_err(api_err)?;
        if let Err(e) = nets.start_dns(&info.name) {
            let _ = nets.remove_network(&info.name);
            return Err(ApiError::internal(format!("network {:?}: {e}", info.name)));
        }
        self.owners()
            .insert(info.name.clone(), caller.tenant().to_string());
        Ok(Self::view(&nets, &info))
    }

    /// Removes a network no container is configured with.
    pub fn remove(&self, caller: &Caller, name: &str, users: &[String]) -> ApiResult<()> {
        let mut nets = self.lock();
        match nets.get(name) {
            Ok(i) if visible(caller, &i) => {}
            _ => return Err(ApiError::not_found("network", name)),
        }
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "network \"{name}\" is used by containers {}: remove them first",
                users.join(", ")
            )));
        }
        nets.stop_dns(name);
        if let Err(e) = nets.remove_network(name) {
            let _ = nets.start_dns(name);
            return Err(api_err(e));
        }
        self.owners().remove(name);
        Ok(())
    }

    /// Checks the network settings of a container of `tenant`, whose quota caps each
    /// container's rate at `bandwidth` bits per second.
    pub fn check_create(
        &self,
        tenant: &str,
        bandwidth: Option<u64>,
        c: &ContainerCreate,
    ) -> ApiResult<()> {
        let Some(name) = wanted(c) else {
            let field = if !c.ports.is_empty() {
                Some("ports")
            } else if !c.rate.is_empty() {
                Some("rate")
            } else if c.allowance.is_some() {
                Some("allowance")
            } else {
                None
            };
            return match field {
                Some(f) => Err(ApiError::invalid(
                    f,
                    format!("{f}: a container without a network has no traffic to shape or publish (give network)"),
                )),
                None => Ok(()),
            };
        };
        let nets = self.lock();
        match nets.get(name) {
            Ok(i) if i.owner.as_deref() == Some(tenant) => {}
            _ => {
                return Err(ApiError::invalid(
                    "network",
                    format!("network \"{name}\" not found"),
                ))
            }
        }
        for (i, p) in c.ports.iter().enumerate() {
            nets.port_policy()
                .check(&port_spec(p))
                .map_err(|e| ApiError::invalid("ports", format!("ports[{i}]: {e}")))?;
            let clash = c.ports[..i].iter().any(|q| {
                q.host_port == p.host_port
                    && q.protocol == p.protocol
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if clash {
                return Err(ApiError::invalid(
                    "ports",
                    format!("ports[{i}]: host port {} is given twice", p.host_port),
                ));
            }
        }
        if [c.rate.ingress_bps, c.rate.egress_bps].contains(&Some(0)) {
            return Err(ApiError::invalid(
                "rate",
                "rate: a limit must be above 0 bit/s",
            ));
        }
        if let Some(cap) = bandwidth {
            let dirs = [
                ("ingress_bps", c.rate.ingress_bps),
                ("egress_bps", c.rate.egress_bps),
            ];
            for (dir, r) in dirs {
                if matches!(r, Some(r) if r > cap) {
                    return Err(ApiError::invalid(
                        "rate",
                        format!("rate.{dir}: above the tenant's bandwidth quota of {cap} bit/s"),
                    ));
                }
            }
        }
        if let Some(a) = &c.allowance {
            if a.bytes_per_month == 0 || a.throttle_bps == Some(0) {
                return Err(ApiError::invalid(
                    "allowance",
                    "allowance: bytes_per_month and throttle_bps must be above 0",
                ));
            }
        }
        Ok(())
    }

    /// Joins container `id` to its network: a pinned namespace, the veth, address, routes,
    /// ports, limits and allowance (with its traffic stopped from the start when `held`), and
    /// its hosts and resolv.conf in `files`. All undone on failure.
    pub fn join(
        &self,
        id: &str,
        name: &str,
        c: &ContainerCreate,
        (bandwidth, held): (Option<u64>, bool),
        files: &Path,
    ) -> ApiResult<Joined> {
        let network = wanted(c).unwrap_or_default().to_string();
        let netns = self.netns_path(id);
        // A namespace left by a run that ended while we were away.
        condo_net::pin::remove_pinned(&netns).map_err(api_err)?;
        condo_net::pin::create_pinned(&netns).map_err(api_err)?;
        let mut nets = self.lock();
        let capped = ContainerCreate {
            rate: capped(&c.rate, bandwidth),
            ..c.clone()
        };
        let res =
            join_locked(&mut nets, id, name, &network, &capped, &netns, files).and_then(|j| {
                if held {
                    nets.set_held(&network, id, true).map_err(api_err)?;
                }
                Ok(j)
            });
        if res.is_err() {
            if nets.lease(&network, id).is_ok() {
                let _ = nets.release(&network, id);
            }
            let _ = condo_net::pin::remove_pinned(&netns);
        }
        res
    }

    /// Takes container `id` off its network (if on one) now that its processes have ended:
    /// its lease, rules and name go; its veth goes with its namespace.
    pub fn leave(&self, id: &str) {
        let mut nets = self.lock();
        if let Some(net) = network_of(&nets, id) {
            if let Err(e) = nets.release(&net, id) {
                tracing::warn!(container = %id, network = %net, "cannot release: {e}");
            }
        }
        if let Err(e) = condo_net::pin::remove_pinned(&self.netns_path(id)) {
            tracing::warn!(container = %id, "{e}");
        }
    }

    /// Takes a deleted container off its network and forgets its allowance usage; returns
    /// what it moved this month.
    pub fn forget(&self, id: &str) -> u64 {
        self.leave(id);
        let mut nets = self.lock();
        let used = nets
            .monthly_usage(&condo_net::current_period())
            .map(|u| u.get(id).copied().unwrap_or(0))
            .unwrap_or(0);
        if let Err(e) = nets.forget_usage(id) {
            tracing::warn!(container = %id, "{e}");
        }
        used
    }

    /// Bytes each container moved this calendar month (UTC), both directions.
    pub fn monthly_usage(&self) -> std::collections::BTreeMap<String, u64> {
        self.lock()
            .monthly_usage(&condo_net::current_period())
            .unwrap_or_else(|e| {
                tracing::warn!("traffic of the month: {e}");
                Default::default()
            })
    }

    /// Stops (or lets through again) the traffic of every attached container for which
    /// `held` answers (its id → whether its owner is past its monthly traffic).
    pub fn hold(&self, held: impl Fn(&str) -> Option<bool>) {
        let mut nets = self.lock();
        let leased: Vec<(String, String)> = nets
            .list()
            .into_iter()
            .flat_map(|n| n.containers.into_iter().map(move |c| (n.name.clone(), c)))
            .collect();
        for (net, id) in leased {
            if let Some(h) = held(&id) {
                if let Err(e) = nets.set_held(&net, &id, h) {
                    tracing::warn!(container = %id, network = %net, "cannot hold its traffic: {e}");
                }
            }
        }
    }

    /// The container's place on its network, while it has one.
    pub fn endpoint(&self, id: &str) -> Option<NetworkEndpoint> {
        let nets = self.lock();
        let net = network_of(&nets, id)?;
        endpoint_of(&nets, &net, id)
    }

    /// Bytes received and sent by the container since it joined (0, 0 without a network).
    pub fn traffic(&self, id: &str) -> (u64, u64) {
        let mut nets = self.lock();
        let Some(net) = network_of(&nets, id) else {
            return (0, 0);
        };
        nets.traffic(&net, id)
            .map(|t| (t.received_bytes, t.sent_bytes))
            .unwrap_or((0, 0))
    }

    /// Applies new rate limits to a running container (a direction left open gets the
    /// tenant's `bandwidth`); nothing to do when it has no lease.
    pub fn set_rate(&self, id: &str, rate: &RateLimits, bandwidth: Option<u64>) -> ApiResult<()> {
        let mut nets = self.lock();
        let Some(net) = network_of(&nets, id) else {
            return Ok(());
        };
        nets.set_rate(&net, id, rate_limit(&capped(rate, bandwidth)))
            .map_err(api_err)
    }

    /// Releases the leases of containers that no longer run (ids for which `live` is false),
    /// and namespaces no lease points at.
    pub fn reconcile(&self, live: impl Fn(&str) -> bool) {
        let leased: Vec<(String, String)> = {
            let nets = self.lock();
            nets.list()
                .into_iter()
                .flat_map(|n| n.containers.into_iter().map(move |c| (n.name.clone(), c)))
                .collect()
        };
        for (_, id) in leased.iter().filter(|(_, id)| !live(id)) {
            self.leave(id);
        }
        if let Ok(rd) = std::fs::read_dir(&self.netns_dir) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !live(&id) {
                    let _ = condo_net::pin::remove_pinned(&e.path());
                }
            }
        }
    }

    /// One pass of the periodic work: allowances against the current month, released veths.
    fn check(&self) {
        let mut nets = self.lock();
        match nets.check_allowances(&condo_net::current_period()) {
            Ok(evs) => {
                for e in evs {
                    tracing::info!(container = %e.container, used = e.used, exceeded = e.exceeded, "allowance");
                }
            }
            Err(e) => tracing::warn!("allowance check: {e}"),
        }
        if let Err(e) = nets.settle() {
            tracing::warn!("released veths: {e}");
        }
    }
}

fn join_locked(
    nets: &mut Networks,
    id: &str,
    name: &str,
    network: &str,
    c: &ContainerCreate,
    netns: &Path,
    files: &Path,
) -> ApiResult<Joined> {
    let hostname = dns_label(c.hostname.as_deref().unwrap_or(name));
    let alias = dns_label(name);
    let req = AttachRequest {
        container: id.to_string(),
        hostname: hostname.clone(),
        aliases: if alias != hostname {
            vec![alias]
        } else {
            vec![]
        },
        netns: Netns::Path(netns.to_path_buf()),
    };
    nets.attach(network, &req).map_err(api_err)?;
    for p in &c.ports {
        nets.publish(network, id, port_spec(p)).map_err(api_err)?;
    }
    if !c.rate.is_empty() {
        nets.set_rate(network, id, rate_limit(&c.rate))
            .map_err(api_err)?;
    }
    if let Some(a) = &c.allowance {
        let policy = match a.policy {
            AllowancePolicy::Stop => condo_net::AllowancePolicy::Stop,
            AllowancePolicy::Throttle => condo_net::AllowancePolicy::Throttle {
                bps: a.throttle_bps.unwrap_or(DEFAULT_THROTTLE_BPS),
            },
        };
        let allowance = condo_net::Allowance {
            bytes_per_month: a.bytes_per_month,
            policy,
        };
        nets.set_allowance(network, id, Some(allowance))
            .map_err(api_err)?;
    }
    std::fs::create_dir_all(files)
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", files.display())))?;
    let hosts = files.join("hosts");
    let resolv = files.join("resolv.conf");
    let write = |p: &Path, text: String| {
        std::fs::write(p, text)
            .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", p.display())))
    };
    write(&hosts, nets.hosts_file(network, id).map_err(api_err)?)?;
    write(&resolv, nets.resolv_conf(network).map_err(api_err)?)?;
    Ok(Joined {
        netns: netns.to_path_buf(),
        hosts,
        resolv,
    })
}

fn visible(caller: &Caller, info: &condo_net::NetworkInfo) -> bool {
    caller
        .scope()
        .is_none_or(|t| info.owner.as_deref() == Some(t))
}

fn network_of(nets: &Networks, id: &str) -> Option<String> {
    nets.list()
        .into_iter()
        .find(|n| n.containers.iter().any(|c| c == id))
        .map(|n| n.name)
}

fn endpoint_of(nets: &Networks, network: &str, id: &str) -> Option<NetworkEndpoint> {
    let l = nets.lease(network, id).ok()?;
    let gw = nets.get(network).ok()?.gateway;
    Some(NetworkEndpoint {
        network: network.to_string(),
        container: id.to_string(),
        ipv4: l.ipv4.to_string(),
        ipv6: l.ipv6.map(|a| a.to_string()),
        gateway: gw.to_string(),
        host_interface: l.host_veth.clone(),
    })
}

/// The first /24 of 10.89.0.0/16 that no network overlaps.
fn free_subnet(nets: &Networks) -> Option<String> {
    let taken: Vec<condo_net::cidr::IpNet> = nets.list().iter().map(|n| n.subnet).collect();
    (0..=255u8).find_map(|i| {
        let addr = IpAddr::from([AUTO_SUBNETS[0], AUTO_SUBNETS[1], i, 0]);
        let net = condo_net::cidr::IpNet::new(addr, 24)?;
        (!taken.iter().any(|t| t.overlaps(&net))).then(|| net.to_string())
    })
}

/// Points the bundle's network namespace at the pinned one and mounts hosts and resolv.conf.
pub fn apply_spec(v: &mut Value, j: &Joined) {
    if let Some(nss) = v["linux"]["namespaces"].as_array_mut() {
        for ns in nss.iter_mut().filter(|n| n["type"] == "network") {
            ns["path"] = json!(j.netns);
        }
    }
    if let Some(mounts) = v["mounts"].as_array_mut() {
        for (dest, src) in [("/etc/hosts", &j.hosts), ("/etc/resolv.conf", &j.resolv)] {
            mounts.push(json!({"destination": dest, "type": "bind", "source": src,
                "options": ["rbind", "rprivate", "ro"]}));
        }
    }
}

/// Runs the blocking `f` on the hub off the async threads.
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Hub) -> T + Send + 'static,
) -> ApiResult<T> {
    let a = app.clone();
    tokio::task::spawn_blocking(move || f(&a.network))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Joins the container of `row` to its network, if it has one.
pub async fn join_container(app: &Arc<App>, row: &ContainerRow) -> ApiResult<Option<Joined>> {
    if wanted(&row.c.config).is_none() {
        return Ok(None);
    }
    let (id, name, cfg) = (row.c.id.clone(), row.c.name.clone(), row.c.config.clone());
    let files = app.paths.dir(&id).join("network");
    let cap = bandwidth_of(app, &row.c.tenant)?;
    let held = past_traffic_quota(&app.db.lock(), &row.c.tenant)?;
    blocking(app, move |h| h.join(&id, &name, &cfg, (cap, held), &files))
        .await?
        .map(Some)
}

/// The tenant's bandwidth quota: each container's rate cap, bits per second.
pub fn bandwidth_of(app: &App, tenant: &str) -> ApiResult<Option<u64>> {
    Ok(crate::quota::quota(&app.db.lock(), tenant)?.and_then(|q| q.bandwidth))
}

/// Takes container `id` off its network, if it is on one.
pub async fn leave_container(app: &Arc<App>, id: &str) {
    let id = id.to_string();
    let _ = blocking(app, move |h| h.leave(&id)).await;
}

/// Takes a deleted container of `tenant` off its network for good; what it moved this month
/// stays counted for the tenant.
pub async fn forget_container(app: &Arc<App>, id: &str, tenant: &str) {
    let i = id.to_string();
    if let Ok(used) = blocking(app, move |h| h.forget(&i)).await {
        let period = condo_net::current_period();
        if let Err(e) = crate::quota::set_traffic(&app.db.lock(), id, tenant, &period, used) {
            tracing::warn!(container = %id, "cannot record its traffic: {e}");
        }
    }
}

/// Whether `tenant`'s containers have moved its `monthly_traffic` quota this month.
pub fn past_traffic_quota(conn: &rusqlite::Connection, tenant: &str) -> rusqlite::Result<bool> {
    let Some(max) = crate::quota::quota(conn, tenant)?.and_then(|q| q.monthly_traffic) else {
        return Ok(false);
    };
    Ok(crate::quota::traffic(conn, tenant, &condo_net::current_period())? >= max)
}

/// Records `usage` (each container's traffic this month) for the containers' tenants, then
/// stops the traffic of every container of a tenant past its monthly traffic quota and lets
/// the others' through (a new month, a raised quota).
pub fn account(app: &App, usage: &std::collections::BTreeMap<String, u64>) {
    let period = condo_net::current_period();
    let held: HashMap<String, bool> = {
        let conn = app.db.lock();
        let rows = match crate::db::list(&conn, None) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("traffic: {e}");
                return;
            }
        };
        let mut past: HashMap<String, bool> = HashMap::new();
        // One commit for the lot.
        let recorded = conn.unchecked_transaction().and_then(|tx| {
            for r in &rows {
                let used = usage.get(&r.c.id).copied().unwrap_or(0);
                if used > 0 {
                    crate::quota::set_traffic(&tx, &r.c.id, &r.c.tenant, &period, used)?;
                }
            }
            tx.commit()
        });
        if let Err(e) = recorded {
            tracing::warn!("cannot record the containers' traffic: {e}");
        }
        rows.into_iter()
            .map(|r| {
                let p = *past.entry(r.c.tenant.clone()).or_insert_with(|| {
                    past_traffic_quota(&conn, &r.c.tenant).unwrap_or_else(|e| {
                        tracing::warn!(tenant = %r.c.tenant, "traffic quota: {e}");
                        false
                    })
                });
                (r.c.id, p)
            })
            .collect()
    };
    app.network.hold(|id| held.get(id).copied());
}

/// Releases what ended while the daemon was away and starts the periodic check.
pub async fn start(app: &Arc<App>) -> anyhow::Result<()> {
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let live = |id: &str| {
            matches!(crate::db::get(&a.db.lock(), id), Ok(Some(r)) if r.c.state.is_live())
        };
        a.network.reconcile(live);
    })
    .await?;
    let a = app.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let b = a.clone();
            let _ = tokio::task::spawn_blocking(move || {
                b.network.check();
                account(&b, &b.network.monthly_usage());
            })
            .await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_ranges_and_policy() {
        assert_eq!(dns_label("web_1.a"), "web-1-a");
        assert_eq!(dns_label("_x"), "cx");
        assert_eq!(
            parse_port_ranges("80,8000-8100").unwrap(),
            vec![80..=80, 8000..=8100]
        );
        assert!(parse_port_ranges("9-1").is_err());
        assert!(parse_port_ranges("x").is_err());
        let p = port_policy(Some("8000-9000"), Some("127.0.0.0/8")).unwrap();
        assert!(!p.wildcard);
        assert!(port_policy(None, Some("nope")).is_err());
    }
}
