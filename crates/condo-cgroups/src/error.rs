//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource value is invalid or cannot be honoured on this host.
    #[error("linux.resources.{field}: {reason}")]
    Resource {
        /// Path of the field under `linux.resources`, e.g. `cpu.quota`.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// A resource value is invalid, said as one sentence after `linux.resources.`.
    #[error("linux.resources.{0}")]
    Invalid(String),
    /// The resources JSON does not parse.
    #[error("linux.resources: invalid JSON: {0}")]
    Json(String),
    /// Writing a resource value to a cgroup file failed.
    #[error("linux.resources.{field}: write {value:?} to {}: {source}", path.display())]
    Apply {
        /// Path of the field under `linux.resources`.
        field: String,
        /// The cgroup file written.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The cgroupsPath is malformed.
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The systemd form of cgroupsPath was asked for on a host without systemd.
    #[error("cgroupsPath {0:?}: systemd is not running, so the systemd cgroup driver (slice:prefix:name) cannot be used")]
    SystemdAbsent(String),
    /// No cgroup filesystem is mounted where expected.
    #[error("no cgroup filesystem mounted at /sys/fs/cgroup")]
    NotMounted,
    /// A controller this operation needs is not available.
    #[error("{what}: the {controller} controller is not available on this host")]
    NoController {
        /// The operation.
        what: &'static str,
        /// The controller it needs.
        controller: &'static str,
    },
    /// A filesystem operation on a cgroup failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was attempted (`mkdir`, `read`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A cgroup file held something unexpected.
    #[error("parse {}: unexpected content {content:?}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        content: String,
    },
    /// Something did not happen in time (freezing, emptying, removing).
    #[error("timed out: {0}")]
    Timeout(String),
    /// Loading or attaching the eBPF device program failed.
    #[error("device eBPF program for {}: {source}", path.display())]
    Bpf {
        /// The cgroup directory.
        path: PathBuf,
        /// The kernel's answer (with the verifier log on load failures).
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn resource(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Resource {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
