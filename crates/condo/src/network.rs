//! The network verbs (`condo network …`) and the parsing of `-p` and `--rate` values.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use condo_api::{
    AllowancePolicy, Network, NetworkCreate, PortMapping, RateLimits, TransferAllowance,
};

use crate::client::{enc, Client};
use crate::output::{parse_size, table};
use crate::Format;

/// `condo network create`'s arguments.
#[derive(Args, Debug)]
pub struct CreateNetwork {
    /// The name.
    name: String,
    /// IPv4 subnet (CIDR); a free /24 of 10.89.0.0/16 when absent.
    #[arg(long)]
    subnet: Option<String>,
    /// IPv4 gateway (default: the subnet's first address).
    #[arg(long)]
    gateway: Option<String>,
    /// IPv6 subnet for a dual-stack network.
    #[arg(long)]
    subnet6: Option<String>,
    /// No way out: no NAT, nothing forwarded off the bridge.
    #[arg(long)]
    internal: bool,
    /// MTU of the bridge and the containers' interfaces.
    #[arg(long)]
    mtu: Option<u32>,
}

impl From<CreateNetwork> for NetworkCreate {
    fn from(a: CreateNetwork) -> Self {
        NetworkCreate {
            name: a.name,
            subnet: a.subnet,
            gateway: a.gateway,
            subnet6: a.subnet6,
            internal: a.internal,
            mtu: a.mtu,
        }
    }
}

/// `condo network …`.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network: a bridge with a subnet, NAT out, and DNS for its containers.
    Create(CreateNetwork),
    /// List networks.
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Everything condod knows about networks, as JSON.
    Inspect {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks no container uses.
    Rm {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

/// Runs `condo network …`.
pub fn run(c: &Client, cmd: NetworkCommand) -> Result<i32> {
    match cmd {
        NetworkCommand::Create(args) => {
            let n: Network = c.json("POST", "/v1/networks", Some(&NetworkCreate::from(args)))?;
            outln!("{}", n.name);
            Ok(0)
        }
        NetworkCommand::Ls { output } => {
            let list: Vec<Network> = c.json("GET", "/v1/networks", None::<&()>)?;
            if output == Format::Json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        n.subnet.clone(),
                        n.gateway.clone(),
                        n.subnet6.clone().unwrap_or_else(|| "-".into()),
                        if n.internal { "internal" } else { "nat" }.into(),
                        n.endpoints.len().to_string(),
                    ]
                })
                .collect();
            table(
                &["NAME", "SUBNET", "GATEWAY", "IPV6", "MODE", "CONTAINERS"],
                &rows,
            );
            Ok(0)
        }
        NetworkCommand::Inspect { networks } => {
            crate::cmd::inspect::<Network>(c, "/v1/networks", &networks)
        }
        NetworkCommand::Rm { networks } => crate::cmd::each(&networks, |n| {
            c.empty("DELETE", &format!("/v1/networks/{}", enc(n)))?;
            outln!("{n}");
            Ok(())
        }),
    }
}

/// Parses `-p [ADDR:]HOST:CONTAINER[/tcp|/udp]`.
pub fn parse_port(s: &str) -> Result<PortMapping> {
    s.parse().map_err(|e| anyhow::anyhow!("-p {e}"))
}

/// Parses a rate: bits per second, or with `kbit`, `mbit`, `gbit` (also `k`, `m`, `g`).
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix("bit").unwrap_or(&t);
    let t = t.strip_suffix("bps").unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        Some('g') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t, 1),
    };
    match num.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok((n * mult as f64).round() as u64),
        _ => bail!("rate \"{s}\": use bits per second, e.g. 10mbit or 500kbit"),
    }
}

/// The limits from `--rate` (both directions) and the `--rate-in` / `--rate-out` overrides.
pub fn rates(
    both: Option<&str>,
    inbound: Option<&str>,
    outbound: Option<&str>,
) -> Result<RateLimits> {
    let both = both.map(parse_rate).transpose()?;
    Ok(RateLimits {
        ingress_bps: inbound.map(parse_rate).transpose()?.or(both),
        egress_bps: outbound.map(parse_rate).transpose()?.or(both),
    })
}

/// The allowance from `--allowance SIZE` and `--allowance-policy stop|throttle[:RATE]`.
pub fn allowance(size: Option<&str>, policy: Option<&str>) -> Result<Option<TransferAllowance>> {
    let Some(size) = size else {
        if policy.is_some() {
            bail!("--allowance-policy needs --allowance");
        }
        return Ok(None);
    };
    let bytes_per_month = parse_size(size).map_err(|e| anyhow::anyhow!("--allowance: {e}"))?;
    let (policy, throttle_bps) = match policy.map(|p| p.split_once(':').unwrap_or((p, ""))) {
        None | Some(("throttle", "")) => (AllowancePolicy::Throttle, None),
        Some(("throttle", r)) => (AllowancePolicy::Throttle, Some(parse_rate(r)?)),
        Some(("stop", "")) => (AllowancePolicy::Stop, None),
        Some(_) => bail!("--allowance-policy: use stop or throttle[:RATE]"),
    };
    Ok(Some(TransferAllowance {
        bytes_per_month,
        policy,
        throttle_bps,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_rates_and_allowances() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        let err = parse_port("nope:80:80").unwrap_err().to_string();
        assert!(err.starts_with("-p \"nope:80:80\""), "{err}");
        assert_eq!(parse_rate("10mbit").unwrap(), 10_000_000);
        assert_eq!(parse_rate("1.5k").unwrap(), 1_500);
        assert_eq!(parse_rate("64000").unwrap(), 64_000);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
        let r = rates(Some("10m"), None, Some("1m")).unwrap();
        assert_eq!(
            (r.ingress_bps, r.egress_bps),
            (Some(10_000_000), Some(1_000_000))
        );
        let a = allowance(Some("1g"), Some("throttle:1mbit"))
            .unwrap()
            .unwrap();
        assert_eq!(a.throttle_bps, Some(1_000_000));
        assert!(allowance(None, Some("stop")).is_err());
        assert!(allowance(Some("1g"), Some("pause")).is_err());
    }
}
