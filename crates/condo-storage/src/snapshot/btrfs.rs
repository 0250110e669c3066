//! The btrfs backend: each snapshot's `fs` is a subvolume; snapshots are O(1) subvolume
//! snapshots; quotas are qgroup limits.

use super::core::{Driver, SnapshotStore};
use super::{Kind, Mount, SnapshotError};
use crate::fsutil::{self, run};
use rustix::fs::{Mode, OFlags};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The btrfs driver.
pub struct Btrfs;

/// The btrfs snapshotter.
pub type BtrfsSnapshotter = SnapshotStore<Btrfs>;

const BTRFS_MAGIC: i64 = 0x9123_683e;

impl SnapshotStore<Btrfs> {
    /// Opens a btrfs snapshotter at `root`, which must be on a btrfs filesystem.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SnapshotError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(super::ioe("create", &root))?;
        let st = rustix::fs::statfs(&root).map_err(|e| super::ioe("statfs", &root)(e.into()))?;
        if st.f_type as i64 != BTRFS_MAGIC {
            return Err(SnapshotError::Unsupported {
                backend: "btrfs",
                path: root,
                reason: "not a btrfs filesystem".into(),
            });
        }
        Self::with_driver(root, Btrfs)
    }
}

/// Opens directory `p` (for the btrfs ioctls).
pub(crate) fn open_dir(p: &Path) -> io::Result<std::os::fd::OwnedFd> {
    rustix::fs::open(
        p,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Into::into)
}

/// Whether `p` is the root directory of a subvolume.
pub(crate) fn is_subvolume(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // A subvolume's root directory always has inode 256.
    std::fs::symlink_metadata(p)
        .map(|m| m.ino() == 256 && m.is_dir())
        .unwrap_or(false)
}

impl Driver for Btrfs {
    const NAME: &'static str = "btrfs";
    const LAYERED: bool = false;

    fn create(
        &self,
        dir: &Path,
        parent: Option<&Path>,
        kind: Kind,
        quota: Option<u64>,
    ) -> io::Result<()> {
        std::fs::create_dir(dir)?;
        let d = open_dir(dir)?;
        match parent {
            Some(p) => {
                condo_sys::btrfs::snapshot_create(open_dir(p)?, &d, c"fs", kind == Kind::View)?
            }
            None => condo_sys::btrfs::subvolume_create(&d, c"fs")?,
        }
        if let Some(q) = quota {
            let fs = dir.join("fs");
            let limit = || {
                run(Command::new("btrfs")
                    .args(["qgroup", "limit", &q.to_string()])
                    .arg(&fs))
            };
            // Quotas are enabled once per filesystem, by the first limit that needs them.
            if limit().is_err() {
                run(Command::new("btrfs").args(["quota", "enable"]).arg(&fs))?;
                limit()?;
            }
        }
        Ok(())
    }

    fn seal(&self, dir: &Path) -> io::Result<()> {
        condo_sys::btrfs::subvolume_set_readonly(open_dir(&dir.join("fs"))?, true)
    }

    fn destroy(&self, dir: &Path) -> io::Result<()> {
        if is_subvolume(&dir.join("fs")) {
            condo_sys::btrfs::subvolume_destroy(open_dir(dir)?, c"fs")?;
        }
        fsutil::remove_all(dir)
    }

    fn copy_live(&self, src: &Path, dst: &Path) -> io::Result<()> {
        std::fs::create_dir(dst)?;
        condo_sys::btrfs::snapshot_create(open_dir(&src.join("fs"))?, open_dir(dst)?, c"fs", true)
    }

    fn copies_in_place(&self, _dir: &Path) -> bool {
        true
    }

    fn mounts(&self, dir: &Path, kind: Kind, _chain: &[PathBuf]) -> Vec<Mount> {
        vec![Mount::bind(dir.join("fs"), kind == Kind::View)]
    }
}
