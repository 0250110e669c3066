//! Instances: a writable root filesystem over an image (O(1) to create), its snapshots,
//! rollback, clones, per-instance quota and backups, on any [`Snapshotter`].
//!
//! Snapshotter keys: `inst/<name>/<gen>` is the instance's active snapshot, `snap/<name>/<snap>`
//! its committed snapshots. A snapshot seals the active snapshot (commit, O(1)) and prepares a
//! fresh one on top; deleted snapshots that still parent something are retired and removed
//! once nothing depends on them.

pub mod backup;

use crate::fsutil;
use crate::snapshot::{Mount, PrepareOptions, SnapshotError, Snapshotter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A reason an instance operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// No instance has this name.
    #[error("instance {0:?} not found")]
    NotFound(String),
    /// The name is taken.
    #[error("instance {0:?} already exists")]
    Exists(String),
    /// The instance has no snapshot of this name.
    #[error("instance {instance:?} has no snapshot {snapshot:?}")]
    NoSnapshot {
        /// The instance.
        instance: String,
        /// The snapshot.
        snapshot: String,
    },
    /// The instance already has a snapshot of this name.
    #[error("instance {instance:?} already has a snapshot {snapshot:?}")]
    SnapshotExists {
        /// The instance.
        instance: String,
        /// The snapshot.
        snapshot: String,
    },
    /// A name holds characters other than letters, digits, `-`, `_` and `.`.
    #[error("invalid name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadName(String),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The instance index could not be read or written.
    #[error("instance index {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A backup stream is unusable.
    #[error("backup: {0}")]
    Backup(String),
}

/// One snapshot of an instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotRecord {
    /// Its name within the instance.
    pub name: String,
    /// Seconds since the epoch.
    pub created: u64,
}

/// The on-disk record of an instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceRecord {
    /// The instance's name.
    pub name: String,
    /// The committed snapshot it was created from (an image's top layer, or another's snapshot).
    pub base: Option<String>,
    /// Its snapshots, oldest first.
    pub snapshots: Vec<SnapshotRecord>,
    /// The hard limit on what it writes, in bytes.
    pub quota: Option<u64>,
    /// Bumped each time the active snapshot is replaced.
    pub generation: u64,
    /// The committed snapshot the current active one sits on.
    pub parent: Option<String>,
    /// A snapshot being taken (a journal entry: a crash part way is completed on next use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// A snapshot as listed, with the space it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotSummary {
    /// Its name.
    pub name: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// Bytes it holds on its own.
    pub size: u64,
}

/// The instances kept in one directory, over one snapshotter.
#[derive(Clone)]
pub struct InstanceStore {
    root: PathBuf,
    snap: Arc<dyn Snapshotter>,
}

pub(crate) fn check_name(n: &str) -> Result<(), InstanceError> {
    if n.is_empty()
        || n.len() > 128
        || n.starts_with('.')
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(InstanceError::BadName(n.into()));
    }
    Ok(())
}

/// The snapshotter key of an instance's snapshot.
pub fn snapshot_key(instance: &str, snapshot: &str) -> String {
    format!("snap/{instance}/{snapshot}")
}

fn active_key(r: &InstanceRecord) -> String {
    format!("inst/{}/{}", r.name, r.generation)
}

impl InstanceStore {
    /// Opens (creating if needed) the instance index at `root` over `snap`.
    pub fn open(
        root: impl Into<PathBuf>,
        snap: Arc<dyn Snapshotter>,
    ) -> Result<Self, InstanceError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| InstanceError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(Self { root, snap })
    }

    /// The snapshotter underneath.
    pub fn snapshotter(&self) -> &Arc<dyn Snapshotter> {
        &self.snap
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.json"))
    }

    /// The record of an instance.
    pub fn get(&self, name: &str) -> Result<InstanceRecord, InstanceError> {
        check_name(name)?;
        let p = self.path(name);
        fsutil::read_json(&p)
            .map_err(|source| InstanceError::Io {
                path: p.clone(),
                source,
            })?
            .ok_or_else(|| InstanceError::NotFound(name.into()))
    }

    pub(crate) fn save(&self, r: &InstanceRecord) -> Result<(), InstanceError> {
        let p = self.path(&r.name);
        fsutil::write_json(&p, r).map_err(|source| InstanceError::Io { path: p, source })
    }

    /// Every instance.
    pub fn list(&self) -> Result<Vec<InstanceRecord>, InstanceError> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.root).map_err(|source| InstanceError::Io {
            path: self.root.clone(),
            source,
        })?;
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = n.strip_suffix(".json") {
                if let Ok(r) = self.get(name) {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates an instance whose root filesystem sits on committed snapshot `base`; O(1).
    pub fn create(
        &self,
        name: &str,
        base: Option<&str>,
        quota: Option<u64>,
    ) -> Result<Vec<Mount>, InstanceError> {
        check_name(name)?;
        if self.path(name).exists() {
            return Err(InstanceError::Exists(name.into()));
        }
        let r = InstanceRecord {
            name: name.into(),
            base: base.map(Into::into),
            snapshots: Vec::new(),
            quota,
            generation: 0,
            parent: base.map(Into::into),
            pending: None,
        };
        let mut undo = crate::reverter::Reverter::new();
        let (key, opts) = (active_key(&r), self.opts(&r));
        let mounts = match self.snap.prepare(&key, base, &opts) {
            Err(SnapshotError::Exists(_)) => {
                // A writable layer without a record: a create killed before it saved the record.
                self.snap.remove(&key)?;
                self.snap.prepare(&key, base, &opts)?
            }
            m => m?,
        };
        let (snap, key) = (self.snap.clone(), active_key(&r));
        undo.add(move || {
            let _ = snap.remove(&key);
        });
        self.save(&r)?;
        undo.success();
        Ok(mounts)
    }

    fn opts(&self, r: &InstanceRecord) -> PrepareOptions {
        let mut o = PrepareOptions {
            quota: r.quota,
            ..Default::default()
        };
        o.labels.insert("condo.instance".into(), r.name.clone());
        o
    }

    /// The mounts of the instance's root filesystem (re-preparing it if a crash lost it).
    pub fn mounts(&self, name: &str) -> Result<Vec<Mount>, InstanceError> {
        let r = self.load(name)?;
        match self.snap.mounts(&active_key(&r)) {
            Err(SnapshotError::NotFound(_)) => {
                Ok(self
                    .snap
                    .prepare(&active_key(&r), r.parent.as_deref(), &self.opts(&r))?)
            }
            m => Ok(m?),
        }
    }

    /// The directory holding what the instance wrote (the upper dir on overlay).
    pub fn upper_path(&self, name: &str) -> Result<PathBuf, InstanceError> {
        Ok(self.snap.fs_path(&active_key(&self.load(name)?))?)
    }

    /// Takes snapshot `snap` of the instance; O(1) in what it wrote. On btrfs, and on overlay
    /// for a layer with a quota (in its own btrfs pool), it is a read-only subvolume snapshot
    /// beside the layer, which stays as it is. Otherwise on overlay the writable layer is
    /// sealed and a fresh one started on it, so the instance must be unmounted (stopped);
    /// [`InstanceStore::snapshot_running`] is the way for one that runs.
    pub fn snapshot(&self, name: &str, snap: &str) -> Result<Vec<Mount>, InstanceError> {
        let mut r = self.load(name)?;
        let layered = self.snap.is_layered();
        if !layered || self.snap.snapshots_in_place(&active_key(&r))? {
            // Nothing to seal (the copy backend copies either way); and for a layer in a pool
            // no new pool to make, nor a deeper stack of layers. A pool filled to the last
            // block has no room for the snapshot's metadata: sealing the layer needs none.
            match self.snapshot_running(name, snap) {
                Err(InstanceError::Snapshot(SnapshotError::Io { source, .. }))
                    if layered && source.raw_os_error() == Some(libc::ENOSPC) => {}
                done => {
                    done?;
                    return self.mounts(name);
                }
            }
        }
        self.require_new(&r, snap)?;
        // Journal first: a crash after the commit below is completed by `load`.
        r.pending = Some(snap.into());
        self.save(&r)?;
        if let Err(e) = self.snap.commit(&snapshot_key(name, snap), &active_key(&r)) {
            r.pending = None;
            self.save(&r)?;
            return Err(e.into());
        }
        self.finish_snapshot(&mut r, snap)
    }

    /// Takes snapshot `snap` of an instance that stays mounted and in use (files open, the
    /// processes frozen by the caller for an application-consistent image). btrfs, and overlay
    /// with a quota (whose layer is a subvolume of its own btrfs pool): a read-only subvolume
    /// snapshot, O(1) in what the instance wrote once that reached the disk. Overlay without a
    /// quota: a copy of what it wrote.
    pub fn snapshot_running(&self, name: &str, snap: &str) -> Result<(), InstanceError> {
        let mut r = self.load(name)?;
        self.require_new(&r, snap)?;
        let key = snapshot_key(name, snap);
        if self.snap.stat(&key).is_ok() {
            // Not in the record: left by a process killed before it saved the record.
            self.snap.remove(&key)?;
        }
        self.snap.snapshot_live(&key, &active_key(&r))?;
        r.snapshots.push(SnapshotRecord {
            name: snap.into(),
            created: crate::content::now_secs(),
        });
        if let Err(e) = self.save(&r) {
            let _ = self.snap.remove(&key);
            return Err(e);
        }
        Ok(())
    }

    fn require_new(&self, r: &InstanceRecord, snap: &str) -> Result<(), InstanceError> {
        check_name(snap)?;
        if r.snapshots.iter().any(|s| s.name == snap) {
            return Err(InstanceError::SnapshotExists {
                instance: r.name.clone(),
                snapshot: snap.into(),
            });
        }
        Ok(())
    }

    fn finish_snapshot(
        &self,
        r: &mut InstanceRecord,
        snap: &str,
    ) -> Result<Vec<Mount>, InstanceError> {
        let key = snapshot_key(&r.name, snap);
        r.snapshots.push(SnapshotRecord {
            name: snap.into(),
            created: crate::content::now_secs(),
        });
        r.generation += 1;
        r.parent = Some(key.clone());
        r.pending = None;
        let mounts = match self.snap.prepare(&active_key(r), Some(&key), &self.opts(r)) {
            Err(SnapshotError::Exists(_)) => self.snap.mounts(&active_key(r))?,
            m => m?,
        };
        self.save(r)?;
        Ok(mounts)
    }

    /// Reads a record and repairs what a crash part way through an operation left: finishes a
    /// journalled snapshot, re-creates a lost writable layer, drops stale ones.
    pub fn load(&self, name: &str) -> Result<InstanceRecord, InstanceError> {
        let mut r = self.get(name)?;
        if let Some(s) = r.pending.clone() {
            match self.snap.stat(&snapshot_key(name, &s)) {
                Ok(i) if i.kind == crate::snapshot::Kind::Committed => {
                    self.finish_snapshot(&mut r, &s)?;
                }
                _ => {
                    r.pending = None;
                    self.save(&r)?;
                }
            }
        }
        let prefix = format!("inst/{name}/");
        let active = active_key(&r);
        let mut have_active = false;
        for i in self.snap.walk()? {
            if i.name == active {
                have_active = true;
            } else if i.name.starts_with(&prefix) {
                self.snap.remove(&i.name)?;
            }
        }
        if !have_active {
            self.snap
                .prepare(&active, r.parent.as_deref(), &self.opts(&r))?;
        }
        Ok(r)
    }

    /// Throws away the instance's current state and restarts it from snapshot `snap`; later
    /// snapshots are kept. The instance must be unmounted.
    pub fn rollback(&self, name: &str, snap: &str) -> Result<Vec<Mount>, InstanceError> {
        let r = self.load(name)?;
        self.require(&r, snap)?;
        self.restart_on(r, snapshot_key(name, snap))
    }

    /// Replaces the instance's writable layer with a fresh one on `parent`.
    fn restart_on(
        &self,
        mut r: InstanceRecord,
        parent: String,
    ) -> Result<Vec<Mount>, InstanceError> {
        let old = active_key(&r);
        r.generation += 1;
        let mounts = self
            .snap
            .prepare(&active_key(&r), Some(&parent), &self.opts(&r))?;
        r.parent = Some(parent);
        if let Err(e) = self.save(&r) {
            let _ = self.snap.remove(&active_key(&r));
            return Err(e);
        }
        self.snap.remove(&old)?;
        Ok(mounts)
    }

    /// Moves the instance onto committed snapshot `base` (a newer build of what it was made
    /// from): its current writable state is dropped, its snapshots are kept, so a rollback to
    /// one of them brings back the old base too. O(1); the instance must be unmounted.
    pub fn rebase(&self, name: &str, base: &str) -> Result<Vec<Mount>, InstanceError> {
        let mut r = self.load(name)?;
        self.snap.stat(base)?;
        r.base = Some(base.into());
        self.restart_on(r, base.into())
    }

    /// Creates instance `new` from snapshot `snap` of `name`; O(1).
    pub fn clone_from(
        &self,
        name: &str,
        snap: &str,
        new: &str,
        quota: Option<u64>,
    ) -> Result<Vec<Mount>, InstanceError> {
        let r = self.load(name)?;
        self.require(&r, snap)?;
        self.create(new, Some(&snapshot_key(name, snap)), quota)
    }

    pub(crate) fn require(&self, r: &InstanceRecord, snap: &str) -> Result<(), InstanceError> {
        if r.snapshots.iter().any(|s| s.name == snap) {
            Ok(())
        } else {
            Err(InstanceError::NoSnapshot {
                instance: r.name.clone(),
                snapshot: snap.into(),
            })
        }
    }

    /// Deletes one snapshot; the others, the instance and its clones are untouched.
    pub fn delete_snapshot(&self, name: &str, snap: &str) -> Result<(), InstanceError> {
        let mut r = self.load(name)?;
        self.require(&r, snap)?;
        r.snapshots.retain(|s| s.name != snap);
        self.retire(&[snapshot_key(name, snap)])?;
        self.save(&r)?;
        self.collect()
    }

    /// The instance's snapshots, oldest first, with the space each holds.
    pub fn snapshots(&self, name: &str) -> Result<Vec<SnapshotSummary>, InstanceError> {
        let r = self.load(name)?;
        r.snapshots
            .iter()
            .map(|s| {
                let size = self.snap.usage(&snapshot_key(name, &s.name))?.size;
                Ok(SnapshotSummary {
                    name: s.name.clone(),
                    created: s.created,
                    size,
                })
            })
            .collect()
    }

    /// Deletes an instance and its snapshots (those a clone still sits on go when it does).
    pub fn delete(&self, name: &str) -> Result<(), InstanceError> {
        let r = self.load(name)?;
        match self.snap.remove(&active_key(&r)) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // Every snapshot of it the snapshotter holds: those the record lists, and one a process
        // killed before it saved the record left behind.
        let prefix = snapshot_key(name, "");
        let mut keys: Vec<String> = r
            .snapshots
            .iter()
            .map(|s| snapshot_key(name, &s.name))
            .collect();
        for i in self.snap.walk()? {
            if i.name.starts_with(&prefix) && !keys.contains(&i.name) {
                keys.push(i.name);
            }
        }
        self.retire(&keys)?;
        let p = self.path(name);
        fsutil::remove_all(&p).map_err(|source| InstanceError::Io { path: p, source })?;
        self.collect()
    }

    fn retired_path(&self) -> PathBuf {
        self.root.join(".retired")
    }

    fn retire(&self, keys: &[String]) -> Result<(), InstanceError> {
        let p = self.retired_path();
        let mut list: Vec<String> = fsutil::read_json(&p)
            .map_err(|source| InstanceError::Io {
                path: p.clone(),
                source,
            })?
            .unwrap_or_default();
        for k in keys {
            if !list.contains(k) {
                list.push(k.clone());
            }
        }
        fsutil::write_json(&p, &list).map_err(|source| InstanceError::Io { path: p, source })
    }

    /// Removes retired snapshots that nothing sits on any more.
    pub fn collect(&self) -> Result<(), InstanceError> {
        let p = self.retired_path();
        let mut list: Vec<String> = fsutil::read_json(&p)
            .map_err(|source| InstanceError::Io {
                path: p.clone(),
                source,
            })?
            .unwrap_or_default();
        loop {
            let before = list.len();
            let mut keep = Vec::new();
            for k in list {
                match self.snap.remove(&k) {
                    Ok(()) | Err(SnapshotError::NotFound(_)) => {}
                    Err(SnapshotError::HasChildren(_)) => keep.push(k),
                    Err(e) => return Err(e.into()),
                }
            }
            list = keep;
            if list.len() == before {
                break;
            }
        }
        fsutil::write_json(&p, &list).map_err(|source| InstanceError::Io { path: p, source })
    }

    /// The root of the index.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
