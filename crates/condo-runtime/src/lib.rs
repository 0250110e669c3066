//! Condo's OCI runtime library: from a bundle (config.json and a root filesystem) to a running
//! container, and every lifecycle verb after that.
//!
//! The runtime process stays single-threaded: the container's init is a clone3 child that runs
//! [`init`]'s setup and then executes the user program, with no re-exec of any binary.

pub mod caps;
pub mod console;
pub mod container;
pub mod create;
pub mod defaults;
pub mod delete;
pub mod devices;
pub mod error;
pub mod exec;
pub mod fsutil;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod kill;
pub mod mountopts;
pub mod ns;
pub mod pause;
pub mod ps;
pub mod rlimits;
pub mod rootfs;
pub mod run;
pub mod sched;
pub mod seccomp;
pub mod spec;
pub mod start;
pub mod state;
pub mod sync;
pub mod update;
pub mod validate;

pub use error::{Error, Result};
