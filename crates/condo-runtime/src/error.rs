//! The runtime library's error type.

use std::io;

/// Everything that can go wrong in the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json (or a process.json) is malformed or invalid; the text names the field.
    #[error("invalid {file}: {reason}")]
    Invalid {
        /// Which document.
        file: &'static str,
        /// The field and what is wrong with it.
        reason: String,
    },
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause (already part of the message, so not chained again).
        source: io::Error,
    },
    /// No container has this id.
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    /// A container with this id exists already.
    #[error("container \"{0}\" already exists")]
    Exists(String),
    /// The operation is not allowed in the container's current status.
    #[error("container \"{id}\" is {status}: {reason}")]
    WrongStatus {
        /// Container id.
        id: String,
        /// Its status.
        status: String,
        /// Why that forbids the operation.
        reason: String,
    },
    /// Setting up the container's process failed inside the container.
    #[error("{0}")]
    Init(String),
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
    /// cgroup work failed.
    #[error(transparent)]
    Cgroup(#[from] condo_cgroups::Error),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

/// Result with the runtime's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an [`Error::Invalid`] for config.json.
pub fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid {
        file: "config.json",
        reason: reason.into(),
    }
}

/// Adds context to I/O results.
pub trait IoContext<T> {
    /// Wraps the error with a description of what was being done.
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: f(),
            source,
        })
    }
}
