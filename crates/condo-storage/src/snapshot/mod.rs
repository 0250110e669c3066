//! Copy-on-write filesystems behind one small trait whose only output is a list of mounts.
//!
//! Keys name active (writable) and view snapshots; `commit` turns an active snapshot into a
//! named, immutable one that can parent others. Backends: [`OverlaySnapshotter`] (default),
//! [`BtrfsSnapshotter`] and [`CopySnapshotter`] (plain copy fallback).

mod btrfs;
mod copy;
mod core;
mod live;
mod meta;
mod mount;
mod overlay;
mod pool;
mod quota;

pub use btrfs::BtrfsSnapshotter;
pub use copy::CopySnapshotter;
pub use core::{Driver, SnapshotStore};
pub(crate) use meta::held_lock;
pub use meta::{Info, Kind};
pub use mount::{mount_all, unmount, Mount};
pub use overlay::OverlaySnapshotter;

use std::io;
use std::path::PathBuf;

/// A reason a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this key or name.
    #[error("snapshot {0:?} not found")]
    NotFound(String),
    /// The key or name is taken.
    #[error("snapshot {0:?} already exists")]
    Exists(String),
    /// The snapshot is of the wrong kind for the operation.
    #[error("snapshot {key:?} is {kind}, expected {expected}")]
    WrongKind {
        /// The snapshot.
        key: String,
        /// What it is.
        kind: Kind,
        /// What the operation needs.
        expected: &'static str,
    },
    /// The snapshot still has children.
    #[error("snapshot {0:?} has children; remove them first")]
    HasChildren(String),
    /// A key is empty, too long or holds a control character.
    #[error("invalid snapshot key {0:?}")]
    BadKey(String),
    /// The backend cannot work at this location.
    #[error("{backend} snapshotter unavailable at {path}: {reason}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// Its root.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A host operation failed.
    #[error("snapshot {what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

pub(crate) fn ioe<'a>(
    what: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Options for a new active snapshot.
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// A hard limit in bytes on what this snapshot may write.
    pub quota: Option<u64>,
    /// Free-form labels kept with the snapshot.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Space a snapshot uses on its own (not counting its parents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Bytes allocated.
    pub size: u64,
    /// Inodes.
    pub inodes: u64,
}

/// The interface every snapshot backend implements.
pub trait Snapshotter: Send + Sync {
    /// The backend's name ("overlayfs", "btrfs", "copy").
    fn backend(&self) -> &'static str;
    /// Creates a writable snapshot `key` on top of committed `parent`; returns its mounts.
    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &PrepareOptions,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// Creates a read-only view `key` of committed `parent`; returns its mounts.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;
    /// The mounts of an active snapshot or view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;
    /// Seals active snapshot `key` as committed `name` (the key ceases to exist); O(1).
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;
    /// Removes a snapshot that has no children.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;
    /// What is known about one snapshot.
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;
    /// The space a snapshot uses on its own.
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;
    /// Every snapshot.
    fn walk(&self) -> Result<Vec<Info>, SnapshotError>;
    /// The directory holding a snapshot's own files (its diff for overlay, the full tree otherwise).
    fn fs_path(&self, key: &str) -> Result<PathBuf, SnapshotError>;
    /// Whether `fs_path` of a committed snapshot holds only what changed from its parent.
    fn is_layered(&self) -> bool;
    /// Commits a copy of active `key`'s current state as `name` while `key` stays active,
    /// mounted and in use: a subvolume snapshot on btrfs, or in the quota pool of a layer with a
    /// quota (O(1) both); elsewhere a copy of its tree.
    fn snapshot_live(&self, name: &str, key: &str) -> Result<(), SnapshotError>;
    /// Whether `snapshot_live` of active `key` is a snapshot in place (btrfs, or a layer in its
    /// quota pool), O(1) in what the layer holds, rather than a copy.
    fn snapshots_in_place(&self, key: &str) -> Result<bool, SnapshotError>;
}

pub(crate) fn check_key(k: &str) -> Result<(), SnapshotError> {
    if k.is_empty() || k.len() > 512 || k.chars().any(|c| c.is_control()) {
        return Err(SnapshotError::BadKey(k.into()));
    }
    Ok(())
}
