//! IPv4 and IPv6 subnets in CIDR notation (`10.88.0.0/16`, `fd00:c0::/64`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a CIDR string or address could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    /// The text is not `ADDRESS/PREFIX`.
    #[error("invalid cidr {text:?}: {reason}")]
    Invalid {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A subnet: a network address and a prefix length, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Builds a subnet from an address and prefix, clearing the host bits.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        if prefix > max_prefix(addr) {
            return None;
        }
        let bits = to_bits(addr) & mask(addr, prefix);
        Some(IpNet {
            addr: from_bits(addr, bits),
            prefix,
        })
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv4 subnet.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` lies inside the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && to_bits(ip) & mask(ip, self.prefix) == to_bits(self.addr)
    }

    /// Whether the two subnets share at least one address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// Number of host bits.
    fn host_bits(&self) -> u32 {
        u32::from(max_prefix(self.addr) - self.prefix)
    }

    /// The address at offset `n` from the network address, if it lies inside the subnet and
    /// is not the IPv4 broadcast address.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let hb = self.host_bits();
        if hb < 128 && n >= (1u128 << hb) {
            return None;
        }
        if self.is_ipv4() && hb > 1 && n == (1u128 << hb) - 1 {
            return None;
        }
        Some(from_bits(self.addr, to_bits(self.addr) + n))
    }

    /// The offset of `ip` from the network address (`ip` must be inside the subnet).
    pub fn offset(&self, ip: IpAddr) -> u128 {
        to_bits(ip) - to_bits(self.addr)
    }

    /// How many offsets IPAM may hand out, capped to keep scans cheap.
    pub fn usable_offsets(&self) -> u128 {
        let hb = self.host_bits().min(24);
        let total = 1u128 << hb;
        if self.is_ipv4() && hb > 1 {
            total - 1
        } else {
            total
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let bad = |reason| CidrError::Invalid {
            text: text.to_string(),
            reason,
        };
        let (a, p) = text.split_once('/').ok_or_else(|| bad("missing /prefix"))?;
        let addr: IpAddr = a.parse().map_err(|_| bad("not an ip address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("prefix is not a number"))?;
        if prefix > max_prefix(addr) {
            return Err(bad("prefix too long"));
        }
        let net = IpNet::new(addr, prefix).ok_or_else(|| bad("prefix too long"))?;
        if net.addr != addr {
            return Err(bad("host bits are set"));
        }
        Ok(net)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

fn mask(addr: IpAddr, prefix: u8) -> u128 {
    let width = u32::from(max_prefix(addr));
    let ones = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    if width == 32 {
        (ones >> 96) & 0xffff_ffff
    } else {
        ones
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let n: IpNet = "10.88.0.0/16".parse().unwrap();
        assert!(n.contains("10.88.3.4".parse().unwrap()));
        assert!(!n.contains("10.89.0.1".parse().unwrap()));
        assert!("10.88.0.1/16".parse::<IpNet>().is_err());
        assert!("10.88.0.0/33".parse::<IpNet>().is_err());
        assert!("10.88.0.0".parse::<IpNet>().is_err());
        assert!("banana/8".parse::<IpNet>().is_err());
        let m: IpNet = "10.88.128.0/24".parse().unwrap();
        assert!(n.overlaps(&m) && m.overlaps(&n));
        let v6: IpNet = "fd00:c0::/64".parse().unwrap();
        assert!(!v6.overlaps(&n));
        assert_eq!(v6.nth(1), Some("fd00:c0::1".parse().unwrap()));
        let small: IpNet = "10.0.0.0/30".parse().unwrap();
        assert_eq!(small.nth(2), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(small.nth(3), None);
        assert_eq!(small.usable_offsets(), 3);
        assert_eq!(n.to_string(), "10.88.0.0/16");
    }
}
