//! The crate's error: each module's error rolled into one.

use std::io;
use std::path::PathBuf;

use crate::cidr::CidrError;
use crate::firewall::FirewallError;
use crate::netlink::NetlinkError;
use crate::state::StateError;
use crate::tc::TcError;

/// Everything that can go wrong in condo-net.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CIDR could not be read.
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// The kernel refused a link, address or route request.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// nft refused the rules.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// tc refused a rate limit.
    #[error(transparent)]
    Tc(#[from] TcError),
    /// The state dir could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A field of a request is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (`subnet`, `gateway`, `host_port`, …).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No network has that name.
    #[error("network {0:?} not found")]
    NoNetwork(String),
    /// A network of that name exists already.
    #[error("invalid name: network {0:?} already exists")]
    NetworkExists(String),
    /// The network still has containers.
    #[error("network {network:?} is in use by {count} containers")]
    NetworkInUse {
        /// The network.
        network: String,
        /// How many containers are attached.
        count: usize,
    },
    /// The container has no lease on the network.
    #[error("container {container:?} is not attached to network {network:?}")]
    NotAttached {
        /// The network.
        network: String,
        /// The container.
        container: String,
    },
    /// The container has a lease on the network already.
    #[error("container {container:?} is already attached to network {network:?}")]
    AlreadyAttached {
        /// The network.
        network: String,
        /// The container.
        container: String,
    },
    /// Every address of the subnet is leased.
    #[error("network {0:?} has no free address left")]
    Exhausted(String),
    /// The host port is taken.
    #[error("invalid host_port: {0} is already published")]
    PortTaken(String),
    /// The port policy forbids publishing this.
    #[error("invalid {field}: {reason} (port policy)")]
    PortDenied {
        /// `host_ip` or `host_port`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A network namespace could not be opened or entered.
    #[error("network namespace {what}: {source}")]
    Netns {
        /// The namespace (pid or path).
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A sysctl could not be written.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        /// The /proc/sys path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The DNS server could not start.
    #[error("dns server on {addr}: {source}")]
    Dns {
        /// The address.
        addr: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an [`Error::Invalid`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        reason: reason.into(),
    }
}
