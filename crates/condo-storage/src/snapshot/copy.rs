//! The plain-copy fallback: every writable snapshot is a full copy (reflinked where possible).

use super::core::{Driver, SnapshotStore};
use super::{live, Kind, Mount, SnapshotError};
use crate::fsutil::run;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The plain-copy driver.
pub struct Copy;

/// The plain-copy snapshotter, for filesystems with neither overlay nor btrfs.
pub type CopySnapshotter = SnapshotStore<Copy>;

impl SnapshotStore<Copy> {
    /// Opens (creating if needed) a copy snapshotter rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SnapshotError> {
        Self::with_driver(root.into(), Copy)
    }
}

impl Driver for Copy {
    const NAME: &'static str = "copy";
    const LAYERED: bool = false;

    fn create(
        &self,
        dir: &Path,
        parent: Option<&Path>,
        kind: Kind,
        quota: Option<u64>,
    ) -> io::Result<()> {
        live::create(dir, quota)?;
        match (kind, parent) {
            // A view of an immutable parent needs no copy: it binds the parent read-only.
            (Kind::View, Some(_)) | (_, None) => std::fs::create_dir(dir.join("fs")),
            (_, Some(p)) => run(Command::new("cp")
                .args(["-a", "--reflink=auto", "--"])
                .arg(p)
                .arg(dir.join("fs")))
            .map(drop),
        }
    }

    fn seal(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn destroy(&self, dir: &Path) -> io::Result<()> {
        live::destroy(dir)
    }

    fn mounts(&self, dir: &Path, kind: Kind, chain: &[PathBuf]) -> Vec<Mount> {
        match (kind, chain.first()) {
            (Kind::View, Some(p)) => vec![Mount::bind(p.clone(), true)],
            (k, _) => vec![Mount::bind(dir.join("fs"), k == Kind::View)],
        }
    }

    fn ensure(&self, dir: &Path) -> io::Result<()> {
        live::ensure(dir)
    }

    fn recover(&self, dir: &Path) {
        live::recover(dir);
    }

    fn copy_live(&self, src: &Path, dst: &Path) -> io::Result<()> {
        live::copy(src, dst)
    }

    fn copies_in_place(&self, dir: &Path) -> bool {
        live::in_place(dir)
    }
}
