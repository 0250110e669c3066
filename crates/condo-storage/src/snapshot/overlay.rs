//! The overlayfs backend: each snapshot's `fs` is an upper directory; committed ones become lowers.

use super::core::{Driver, SnapshotStore};
use super::{live, Kind, Mount, SnapshotError};
use std::io;
use std::path::{Path, PathBuf};

/// The overlayfs driver.
pub struct Overlay;

/// The overlayfs snapshotter (the default).
pub type OverlaySnapshotter = SnapshotStore<Overlay>;

impl SnapshotStore<Overlay> {
    /// Opens (creating if needed) an overlayfs snapshotter rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SnapshotError> {
        Self::with_driver(root.into(), Overlay)
    }
}

impl Driver for Overlay {
    const NAME: &'static str = "overlayfs";
    const LAYERED: bool = true;

    fn create(
        &self,
        dir: &Path,
        _parent: Option<&Path>,
        kind: Kind,
        quota: Option<u64>,
    ) -> io::Result<()> {
        live::create(dir, quota)?;
        std::fs::create_dir(dir.join("fs"))?;
        if kind == Kind::Active {
            std::fs::create_dir(dir.join("work"))?;
        }
        Ok(())
    }

    fn seal(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn destroy(&self, dir: &Path) -> io::Result<()> {
        live::destroy(dir)
    }

    fn mounts(&self, dir: &Path, kind: Kind, chain: &[PathBuf]) -> Vec<Mount> {
        let lower = || {
            let l: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
            format!("lowerdir={}", l.join(":"))
        };
        match (kind, chain.len()) {
            (Kind::Active, 0) => vec![Mount::bind(dir.join("fs"), false)],
            (Kind::Active, _) => vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    "index=off".into(),
                    lower(),
                    format!("upperdir={}", dir.join("fs").display()),
                    format!("workdir={}", dir.join("work").display()),
                ],
            }],
            (_, 0) => vec![Mount::bind(dir.join("fs"), true)],
            (_, 1) => vec![Mount::bind(chain[0].clone(), true)],
            _ => vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec!["ro".into(), lower()],
            }],
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
