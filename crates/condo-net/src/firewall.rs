//! The one nftables table of Condo (`inet condo`), generated whole from the wanted state and
//! applied as one atomic `nft -j -f -` transaction through the [`Firewall`] trait.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::cidr::IpNet;

/// Name of Condo's nftables table (family `inet`).
pub const TABLE: &str = "condo";

/// Why the rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The nft binary could not be run.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The binary path.
        binary: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// nft refused the ruleset.
    #[error("nft refused the condo table: {stderr}")]
    Refused {
        /// What nft printed.
        stderr: String,
    },
}

/// Applies an nftables JSON batch; the real one runs `nft`, tests use [`RecordingFirewall`].
pub trait Firewall: Send + Sync {
    /// Applies `batch` (a `{"nftables": [...]}` document) as one transaction.
    fn apply(&self, batch: &Value) -> Result<(), FirewallError>;
}

/// Drives Debian's `nft` binary with JSON on stdin.
#[derive(Debug, Clone)]
pub struct NftCli {
    binary: PathBuf,
}

impl Default for NftCli {
    fn default() -> Self {
        NftCli {
            binary: PathBuf::from("nft"),
        }
    }
}

impl NftCli {
    /// Uses the nft binary at `binary`.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        NftCli {
            binary: binary.into(),
        }
    }
}

impl Firewall for NftCli {
    fn apply(&self, batch: &Value) -> Result<(), FirewallError> {
        let spawn_err = |source| FirewallError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        };
        let mut child = Command::new(&self.binary)
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(batch.to_string().as_bytes())
                .map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(FirewallError::Refused {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// A fake firewall for unit tests: records every batch and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingFirewall {
    /// Every batch applied, oldest first.
    pub batches: Mutex<Vec<Value>>,
    /// When set, `apply` fails with this message.
    pub fail_with: Mutex<Option<String>>,
}

impl Firewall for RecordingFirewall {
    fn apply(&self, batch: &Value) -> Result<(), FirewallError> {
        if let Some(msg) = self.fail_with.lock().map(|g| g.clone()).unwrap_or(None) {
            return Err(FirewallError::Refused { stderr: msg });
        }
        if let Ok(mut b) = self.batches.lock() {
            b.push(batch.clone());
        }
        Ok(())
    }
}

/// The rules one network needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The bridge device.
    pub bridge: String,
    /// The IPv4 subnet.
    pub subnet: IpNet,
    /// The IPv4 gateway (the bridge's address, where DNS answers).
    pub gateway: IpAddr,
    /// The optional IPv6 subnet.
    pub subnet6: Option<IpNet>,
    /// Whether traffic leaving the host is masqueraded (false for internal networks, which
    /// get no way out at all).
    pub masquerade: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The nft name of the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port: host address and port forwarded to a container address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// The host address, or `None` for every local address (127.0.0.1 included).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// tcp or udp.
    pub protocol: Protocol,
    /// The container's address.
    pub target: Ipv4Addr,
    /// The container's port.
    pub target_port: u16,
}

/// Everything the table must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallState {
    /// Every network.
    pub networks: Vec<NetworkRules>,
    /// Every published port.
    pub ports: Vec<PortRule>,
    /// Container addresses whose traffic is dropped (allowance used up with the stop policy, or
    /// held for their owner's monthly traffic).
    pub stopped: Vec<IpAddr>,
}

fn m(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

fn prefix(net: &IpNet) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix()}})
}

fn family_of(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// Builds the batch that replaces the whole table with `state` (or removes it when empty).
pub fn ruleset(state: &FirewallState) -> Value {
    let table = json!({"family": "inet", "name": TABLE});
    let mut cmds = vec![
        json!({"add": {"table": table}}),
        json!({"delete": {"table": table}}),
    ];
    if state.networks.is_empty() {
        return json!({"nftables": cmds});
    }
    cmds.push(json!({"add": {"table": table}}));
    let chain = |name: &str, kind: &str, hook: &str, prio: i32| {
        json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": name,
            "type": kind, "hook": hook, "prio": prio, "policy": "accept"}}})
    };
    cmds.push(chain("input", "filter", "input", 0));
    cmds.push(chain("forward", "filter", "forward", 0));
    cmds.push(chain("prerouting", "nat", "prerouting", -100));
    cmds.push(chain("output", "nat", "output", -100));
    cmds.push(chain("postrouting", "nat", "postrouting", 100));
    let mut rule = |chain: &str, expr: Vec<Value>| {
        cmds.push(
            json!({"add": {"rule": {"family": "inet", "table": TABLE, "chain": chain,
            "expr": expr}}}),
        );
    };
    let drop = json!({"drop": null});
    let accept = json!({"accept": null});
    let established = m(
        json!({"ct": {"key": "state"}}),
        "in",
        json!(["established", "related"]),
    );
    for ip in &state.stopped {
        let fam = family_of(*ip);
        for chain in ["input", "forward"] {
            rule(
                chain,
                vec![
                    m(payload(fam, "saddr"), "==", json!(ip.to_string())),
                    drop.clone(),
                ],
            );
        }
        rule(
            "forward",
            vec![
                m(payload(fam, "daddr"), "==", json!(ip.to_string())),
                drop.clone(),
            ],
        );
    }
    for n in &state.networks {
        let br = json!(n.bridge);
        // The host's own services are closed to containers: only DNS on the gateway, ICMP
        // (IPv6 neighbour discovery needs it) and answers to the host's own connections.
        let iif = m(meta("iifname"), "==", br.clone());
        rule(
            "input",
            vec![iif.clone(), established.clone(), accept.clone()],
        );
        for proto in ["udp", "tcp"] {
            rule(
                "input",
                vec![
                    iif.clone(),
                    m(
                        payload(family_of(n.gateway), "daddr"),
                        "==",
                        json!(n.gateway.to_string()),
                    ),
                    m(payload(proto, "dport"), "==", json!(53)),
                    accept.clone(),
                ],
            );
        }
        rule(
            "input",
            vec![
                iif.clone(),
                m(meta("l4proto"), "==", json!({"set": ["icmp", "ipv6-icmp"]})),
                accept.clone(),
            ],
        );
        rule("input", vec![iif.clone(), drop.clone()]);
        // Containers of one network reach each other.
        rule(
            "forward",
            vec![
                iif.clone(),
                m(meta("oifname"), "==", br.clone()),
                accept.clone(),
            ],
        );
    }
    rule("forward", vec![established.clone(), accept.clone()]);
    for n in &state.networks {
        let br = json!(n.bridge);
        let oif = m(meta("oifname"), "==", br.clone());
        // New connections into a network come only through published ports.
        rule(
            "forward",
            vec![
                oif.clone(),
                m(json!({"ct": {"key": "status"}}), "in", json!("dnat")),
                accept.clone(),
            ],
        );
        rule("forward", vec![oif.clone(), drop.clone()]);
        let masq = json!({"masquerade": null});
        if n.masquerade {
            let nets = std::iter::once(n.subnet).chain(n.subnet6);
            for net in nets {
                let fam = if net.is_ipv4() { "ip" } else { "ip6" };
                rule(
                    "postrouting",
                    vec![
                        m(payload(fam, "saddr"), "==", prefix(&net)),
                        m(meta("oifname"), "!=", br.clone()),
                        masq.clone(),
                    ],
                );
            }
        }
        // Published ports reached from 127.0.0.1 or from a container of the same network
        // (hairpin) need a source the container can answer.
        let localnet: IpNet = IpNet::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8).unwrap_or(n.subnet);
        rule(
            "postrouting",
            vec![
                oif.clone(),
                m(payload("ip", "saddr"), "==", prefix(&localnet)),
                masq.clone(),
            ],
        );
        rule(
            "postrouting",
            vec![
                oif.clone(),
                m(payload("ip", "saddr"), "==", prefix(&n.subnet)),
                m(json!({"ct": {"key": "status"}}), "in", json!("dnat")),
                masq,
            ],
        );
    }
    // Only after every network has closed its way in may traffic leave for the outside.
    for n in &state.networks {
        let iif = m(meta("iifname"), "==", json!(n.bridge));
        let verdict = if n.masquerade { &accept } else { &drop };
        rule("forward", vec![iif, verdict.clone()]);
    }
    for p in &state.ports {
        let dst = match p.host_ip {
            Some(ip) => m(payload("ip", "daddr"), "==", json!(ip.to_string())),
            None => m(
                json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                "==",
                json!("local"),
            ),
        };
        let expr = vec![
            dst,
            m(
                payload(p.protocol.as_str(), "dport"),
                "==",
                json!(p.host_port),
            ),
            json!({"dnat": {"family": "ip", "addr": p.target.to_string(), "port": p.target_port}}),
        ];
        rule("prerouting", expr.clone());
        rule("output", expr);
    }
    json!({"nftables": cmds})
}

#[cfg(test)]
#[path = "firewall_tests.rs"]
mod tests;
