//! The part every backend shares: keys, parents, kinds and metadata; drivers do the files.

use super::meta::{now, Info, Kind, MetaStore, Table};
use super::{check_key, ioe, Mount, PrepareOptions, SnapshotError, Snapshotter, Usage};
use crate::fsutil;
use std::io;
use std::path::{Path, PathBuf};

/// What a backend does to the filesystem; [`SnapshotStore`] does the bookkeeping.
pub trait Driver: Send + Sync + 'static {
    /// The backend's name.
    const NAME: &'static str;
    /// Whether a committed snapshot's directory holds only its diff.
    const LAYERED: bool;
    /// Creates `dir/fs` for a new snapshot of `kind` over `parent` (the parent's `fs`).
    fn create(
        &self,
        dir: &Path,
        parent: Option<&Path>,
        kind: Kind,
        quota: Option<u64>,
    ) -> io::Result<()>;
    /// Makes a committed snapshot immutable.
    fn seal(&self, dir: &Path) -> io::Result<()>;
    /// Removes everything `create` made.
    fn destroy(&self, dir: &Path) -> io::Result<()>;
    /// The mounts of an active snapshot or view; `chain` holds the ancestors' `fs`, nearest first.
    fn mounts(&self, dir: &Path, kind: Kind, chain: &[PathBuf]) -> Vec<Mount>;
    /// Re-establishes anything a reboot undid (a quota filesystem's mount).
    fn ensure(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    /// Undoes what a process killed part way through an operation left held (a freeze).
    fn recover(&self, _dir: &Path) {}
    /// Makes `dst/fs` a copy of `src/fs` as it is now, while `src` stays mounted and in use.
    fn copy_live(&self, src: &Path, dst: &Path) -> io::Result<()>;
    /// Whether `copy_live` of `dir` is a snapshot in place, O(1) in what the layer holds.
    fn copies_in_place(&self, _dir: &Path) -> bool {
        false
    }
}

/// A snapshotter: shared bookkeeping over one backend driver.
pub struct SnapshotStore<D: Driver> {
    pub(crate) root: PathBuf,
    meta: MetaStore,
    pub(crate) driver: D,
}

impl<D: Driver> SnapshotStore<D> {
    pub(crate) fn with_driver(root: PathBuf, driver: D) -> Result<Self, SnapshotError> {
        let snaps = root.join("snapshots");
        std::fs::create_dir_all(&snaps).map_err(ioe("create", &snaps))?;
        let s = Self {
            meta: MetaStore::new(&root),
            root,
            driver,
        };
        s.sweep()?;
        Ok(s)
    }

    /// The directory of snapshot `id`.
    fn dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// Removes directories that no record names (left by a crash mid-create or mid-remove) and
    /// undoes what a killed operation held. Under the exclusive lock, so that an operation of
    /// another process in flight is not taken for a crashed one.
    fn sweep(&self) -> Result<(), SnapshotError> {
        self.meta.exclusive(|t| {
            let known: std::collections::HashSet<u64> =
                t.snapshots.values().map(|i| i.id).collect();
            let snaps = self.root.join("snapshots");
            for e in std::fs::read_dir(&snaps).map_err(ioe("list", &snaps))? {
                let e = e.map_err(ioe("list", &snaps))?;
                let name = e.file_name();
                let Some(id) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else {
                    continue;
                };
                if id >= t.next_id || !known.contains(&id) {
                    // Only ids below next_id were ever handed out; a higher one is a crashed create.
                    let _ = self.driver.destroy(&e.path());
                } else {
                    self.driver.recover(&e.path());
                }
            }
            Ok(())
        })
    }

    /// The `fs` of `parent` and its ancestors, nearest first, each ready to be a lower.
    fn chain(&self, t: &Table, parent: Option<&str>) -> Result<Vec<PathBuf>, SnapshotError> {
        t.chain(parent)?
            .into_iter()
            .map(|id| {
                let dir = self.dir(id);
                self.driver.ensure(&dir).map_err(ioe("prepare", &dir))?;
                Ok(dir.join("fs"))
            })
            .collect()
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        opts: &PrepareOptions,
    ) -> Result<Vec<Mount>, SnapshotError> {
        check_key(key)?;
        self.meta.update(|t| {
            if t.snapshots.contains_key(key) {
                return Err(SnapshotError::Exists(key.into()));
            }
            let parent_fs = match parent {
                Some(p) => Some(self.dir(t.committed(p)?.id).join("fs")),
                None => None,
            };
            let chain = self.chain(t, parent)?;
            let id = t.next_id;
            t.next_id += 1;
            let dir = self.dir(id);
            if let Err(e) = self
                .driver
                .create(&dir, parent_fs.as_deref(), kind, opts.quota)
            {
                let _ = self.driver.destroy(&dir);
                return Err(ioe("create", &dir)(e));
            }
            t.snapshots.insert(
                key.into(),
                Info {
                    name: key.into(),
                    kind,
                    parent: parent.map(Into::into),
                    created: now(),
                    quota: opts.quota,
                    labels: opts.labels.clone(),
                    id,
                },
            );
            Ok(self.driver.mounts(&dir, kind, &chain))
        })
    }
}

impl<D: Driver> Snapshotter for SnapshotStore<D> {
    fn backend(&self) -> &'static str {
        D::NAME
    }

    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &PrepareOptions,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::Active, opts)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::View, &PrepareOptions::default())
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        // Exclusive: `ensure` may mount, which two processes must not do at once.
        self.meta.exclusive(|t| {
            let i = t.get(key)?;
            if i.kind == Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    kind: i.kind,
                    expected: "active or a view",
                });
            }
            let chain = self.chain(t, i.parent.as_deref())?;
            let dir = self.dir(i.id);
            self.driver.ensure(&dir).map_err(ioe("prepare", &dir))?;
            Ok(self.driver.mounts(&dir, i.kind, &chain))
        })
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        check_key(name)?;
        self.meta.update(|t| {
            let i = t.get(key)?.clone();
            if i.kind != Kind::Active {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    kind: i.kind,
                    expected: "active",
                });
            }
            if t.snapshots.contains_key(name) {
                return Err(SnapshotError::Exists(name.into()));
            }
            let dir = self.dir(i.id);
            self.driver.seal(&dir).map_err(ioe("commit", &dir))?;
            t.snapshots.remove(key);
            t.snapshots.insert(
                name.into(),
                Info {
                    name: name.into(),
                    kind: Kind::Committed,
                    created: now(),
                    ..i
                },
            );
            Ok(())
        })
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        self.meta.update(|t| {
            let id = t.get(key)?.id;
            if t.has_children(key) {
                return Err(SnapshotError::HasChildren(key.into()));
            }
            let dir = self.dir(id);
            self.driver.destroy(&dir).map_err(ioe("remove", &dir))?;
            t.snapshots.remove(key);
            Ok(())
        })
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        Ok(self.meta.read()?.get(key)?.clone())
    }

    fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let p = self.fs_path(key)?;
        let (size, inodes) = fsutil::disk_usage(&p).map_err(ioe("usage", &p))?;
        Ok(Usage { size, inodes })
    }

    fn walk(&self) -> Result<Vec<Info>, SnapshotError> {
        Ok(self.meta.read()?.snapshots.into_values().collect())
    }

    fn fs_path(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        self.meta.exclusive(|t| {
            let dir = self.dir(t.get(key)?.id);
            self.driver.ensure(&dir).map_err(ioe("mount", &dir))?;
            Ok(dir.join("fs"))
        })
    }

    fn is_layered(&self) -> bool {
        D::LAYERED
    }

    fn snapshots_in_place(&self, key: &str) -> Result<bool, SnapshotError> {
        let id = self.meta.read()?.get(key)?.id;
        Ok(self.driver.copies_in_place(&self.dir(id)))
    }

    fn snapshot_live(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        check_key(name)?;
        self.meta.update(|t| {
            let i = t.get(key)?.clone();
            if i.kind != Kind::Active {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    kind: i.kind,
                    expected: "active",
                });
            }
            if t.snapshots.contains_key(name) {
                return Err(SnapshotError::Exists(name.into()));
            }
            let id = t.next_id;
            t.next_id += 1;
            let dir = self.dir(id);
            let src = self.dir(i.id);
            self.driver.ensure(&src).map_err(ioe("snapshot", &src))?;
            if let Err(e) = self.driver.copy_live(&src, &dir) {
                let _ = self.driver.destroy(&dir);
                return Err(ioe("snapshot", &dir)(e));
            }
            let info = Info {
                name: name.into(),
                kind: Kind::Committed,
                created: now(),
                quota: None,
                id,
                ..i
            };
            t.snapshots.insert(name.into(), info);
            Ok(())
        })
    }
}
