//! Networks, published ports, rate limits and transfer allowances on the wire.

use serde::{Deserialize, Serialize};

/// The body of `POST /v1/networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    /// A host-wide unique name: 1–32 of letters, digits, `_ . -`.
    pub name: String,
    /// The IPv4 subnet (CIDR, /8 to /30); a free /24 of 10.89.0.0/16 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The IPv4 gateway (the bridge's address and the network's DNS server); the subnet's
    /// first address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// An IPv6 subnet (/64 to /120) for a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<String>,
    /// A network without a way out: no NAT, nothing forwarded off the bridge.
    #[serde(default)]
    pub internal: bool,
    /// The MTU of the bridge and the containers' interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkEndpoint {
    /// The network.
    pub network: String,
    /// The container id.
    pub container: String,
    /// Its IPv4 address.
    pub ipv4: String,
    /// Its IPv6 address, on dual-stack networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// The gateway (and DNS server) it uses.
    pub gateway: String,
    /// The host end of its veth pair.
    pub host_interface: String,
}

/// A network as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Network {
    /// The name.
    pub name: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// The bridge device on the host.
    pub bridge: String,
    /// The IPv4 subnet.
    pub subnet: String,
    /// The IPv4 gateway.
    pub gateway: String,
    /// The IPv6 subnet, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<String>,
    /// The IPv6 gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<String>,
    /// Whether it has no way out.
    pub internal: bool,
    /// The MTU, if not the kernel's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The running containers attached to it.
    pub endpoints: Vec<NetworkEndpoint>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// A container port published on the host (DNAT, also from 127.0.0.1; no proxy process).
/// Also accepted as a string: `"[ADDR:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortMapping {
    /// The host IPv4 address; every local address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Ipv4))]
    pub host_ip: Option<std::net::Ipv4Addr>,
    /// The host port (within the admin's port policy; 1024–65535 unless set otherwise).
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// tcp (default) or udp.
    #[serde(default)]
    pub protocol: PortProtocol,
}

/// The object form of [`PortMapping`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortFields {
    #[serde(default)]
    host_ip: Option<std::net::Ipv4Addr>,
    host_port: u16,
    container_port: u16,
    #[serde(default)]
    protocol: PortProtocol,
}

impl std::str::FromStr for PortMapping {
    type Err = String;

    /// Reads `[ADDR:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("\"{s}\": use [ADDR:]HOST_PORT:CONTAINER_PORT[/udp]");
        let (spec, protocol) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, PortProtocol::Tcp),
            Some((p, "udp")) => (p, PortProtocol::Udp),
            Some(_) => return Err(bad()),
            None => (s, PortProtocol::Tcp),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (addr, host, ctr) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [a, h, c] => (Some(*a), *h, *c),
            _ => return Err(bad()),
        };
        Ok(PortMapping {
            host_ip: addr.map(|a| a.parse()).transpose().map_err(|_| bad())?,
            host_port: host.parse().map_err(|_| bad())?,
            container_port: ctr.parse().map_err(|_| bad())?,
            protocol,
        })
    }
}

impl<'de> Deserialize<'de> for PortMapping {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = PortMapping;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"[ADDR:]HOST:CONTAINER[/udp]\" or {host_port, container_port, ...}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortMapping, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<PortMapping, A::Error> {
                let f = PortFields::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(PortMapping {
                    host_ip: f.host_ip,
                    host_port: f.host_port,
                    container_port: f.container_port,
                    protocol: f.protocol,
                })
            }
        }
        d.deserialize_any(Form)
    }
}

/// Rate limits of a container's traffic in bits per second; an absent direction is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Traffic towards the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_bps: Option<u64>,
    /// Traffic from the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_bps: Option<u64>,
}

impl RateLimits {
    /// Whether neither direction is limited.
    pub fn is_empty(&self) -> bool {
        self.ingress_bps.is_none() && self.egress_bps.is_none()
    }
}

/// What happens when a container has used its monthly allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AllowancePolicy {
    /// Both directions are limited to `throttle_bps` until the month ends.
    #[default]
    Throttle,
    /// All traffic is dropped until the month ends.
    Stop,
}

/// A monthly transfer allowance (bytes in both directions, calendar month in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferAllowance {
    /// Bytes allowed per month.
    pub bytes_per_month: u64,
    /// What happens once they are used.
    #[serde(default)]
    pub policy: AllowancePolicy,
    /// The rate of the throttle policy, bits per second (default 1 Mbit/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_bps: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_as_text_or_fields() {
        let p: Vec<PortMapping> = serde_json::from_str(
            r#"["127.0.0.1:8080:80/udp", "81:8081", {"host_port": 82, "container_port": 8082}]"#,
        )
        .unwrap();
        assert_eq!(p[0].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((p[0].host_port, p[0].container_port), (8080, 80));
        assert_eq!(p[0].protocol, PortProtocol::Udp);
        assert_eq!((p[1].host_port, p[1].protocol), (81, PortProtocol::Tcp));
        assert_eq!(p[2].container_port, 8082);
        for bad in [
            r#""80""#,
            r#""x:80""#,
            r#""1:2:3:4""#,
            r#""80:80/sctp""#,
            r#"{"port": 1}"#,
        ] {
            assert!(serde_json::from_str::<PortMapping>(bad).is_err(), "{bad}");
        }
        let back = serde_json::to_string(&p[1]).unwrap();
        assert_eq!(serde_json::from_str::<PortMapping>(&back).unwrap(), p[1]);
    }
}
