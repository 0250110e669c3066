//! Container networking for Condo: bridges, veth pairs, IPAM, nftables rules, published
//! ports, bandwidth limits and traffic allowances, and a small DNS resolver per network.
//!
//! [`Networks`] is the entry point; it keeps its state in a directory and drives the kernel
//! through netlink, nftables (one `inet condo` table) and tc.

mod attach;
pub mod cidr;
pub mod dns;
mod error;
pub mod firewall;
mod manager;
pub mod netlink;
pub mod pin;
mod spec;
pub mod state;
pub mod tc;
mod traffic;

pub use attach::{AttachRequest, Attachment, DRAIN_LIMIT_SECS};
pub use error::{Error, Result};
pub use firewall::{Firewall, NftCli, Protocol, RecordingFirewall};
pub use manager::{NetworkInfo, Networks, Options};
pub use spec::{Netns, NetworkSpec, PortPolicy, PortSpec};
pub use state::{Allowance, AllowancePolicy, RateLimit};
pub use tc::{TcCli, TrafficControl};
pub use traffic::{current_period, AllowanceEvent, Traffic};
