//! DNS for container networks: a minimal wire-format codec and a resolver per network.

pub mod message;
pub mod server;

pub use server::{upstreams_from_resolv_conf, DnsServer, Zone};
