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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
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
