//! Snapshot metadata: one JSON file per store, rewritten atomically under a file lock.

use super::{ioe, SnapshotError};
use crate::fsutil;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The kind of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable.
    Active,
    /// Read-only view of a committed snapshot.
    View,
    /// Immutable; may parent others.
    Committed,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Active => "active",
            Kind::View => "a view",
            Kind::Committed => "committed",
        })
    }
}

/// What is known about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Info {
    /// Its key (active, view) or name (committed).
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The committed snapshot below it.
    pub parent: Option<String>,
    /// Seconds since the epoch.
    pub created: u64,
    /// Its quota in bytes, if any.
    pub quota: Option<u64>,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
    /// The backend's internal id (names its directory).
    pub id: u64,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Table {
    pub next_id: u64,
    pub snapshots: BTreeMap<String, Info>,
}

impl Table {
    pub fn get(&self, key: &str) -> Result<&Info, SnapshotError> {
        self.snapshots
            .get(key)
            .ok_or_else(|| SnapshotError::NotFound(key.into()))
    }

    pub fn committed(&self, key: &str) -> Result<&Info, SnapshotError> {
        let i = self.get(key)?;
        if i.kind != Kind::Committed {
            return Err(SnapshotError::WrongKind {
                key: key.into(),
                kind: i.kind,
                expected: "committed",
            });
        }
        Ok(i)
    }

    /// The ids of `parent` and its ancestors, nearest first.
    pub fn chain(&self, parent: Option<&str>) -> Result<Vec<u64>, SnapshotError> {
        let mut out = Vec::new();
        let mut p = parent.map(str::to_string);
        while let Some(k) = p {
            let i = self.get(&k)?;
            out.push(i.id);
            p = i.parent.clone();
        }
        Ok(out)
    }

    pub fn has_children(&self, key: &str) -> bool {
        self.snapshots
            .values()
            .any(|i| i.parent.as_deref() == Some(key))
    }
}

thread_local! {
    /// The lock this thread holds, if any: helper processes get it as their stdin.
    static HELD: std::cell::RefCell<Option<File>> = const { std::cell::RefCell::new(None) };
}

/// A held lock; forgotten by the thread when dropped.
struct Held(#[allow(dead_code)] File);

impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|h| *h.borrow_mut() = None);
    }
}

/// The snapshot store's lock while this thread holds it, for a helper process to inherit: a
/// flock belongs to the open file, so a helper orphaned by a kill (a `mount`, a `cp`) keeps the
/// lock until it exits, and the next process's recovery waits for it instead of racing it.
pub(crate) fn held_lock() -> Option<File> {
    HELD.with(|h| h.borrow().as_ref().and_then(|f| f.try_clone().ok()))
}

/// The metadata file of one snapshotter root.
#[derive(Debug, Clone)]
pub(crate) struct MetaStore {
    path: PathBuf,
    lock: PathBuf,
}

impl MetaStore {
    pub fn new(root: &Path) -> Self {
        Self {
            path: root.join("metadata.json"),
            lock: root.join("metadata.lock"),
        }
    }

    fn lock(&self, op: rustix::fs::FlockOperation) -> Result<Held, SnapshotError> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(ioe("lock", &self.lock))?;
        rustix::fs::flock(&lock, op).map_err(|e| ioe("lock", &self.lock)(e.into()))?;
        HELD.with(|h| *h.borrow_mut() = lock.try_clone().ok());
        Ok(Held(lock))
    }

    fn load(&self) -> Result<Table, SnapshotError> {
        Ok(fsutil::read_json(&self.path)
            .map_err(ioe("read", &self.path))?
            .unwrap_or_default())
    }

    /// Runs `f` on the table under an exclusive lock and saves the table if `f` succeeds.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut Table) -> Result<T, SnapshotError>,
    ) -> Result<T, SnapshotError> {
        let _lock = self.lock(rustix::fs::FlockOperation::LockExclusive)?;
        let mut t = self.load()?;
        let r = f(&mut t)?;
        fsutil::write_json(&self.path, &t).map_err(ioe("write", &self.path))?;
        Ok(r)
    }

    /// Runs `f` on the table under an exclusive lock, without saving it: no other process is
    /// part way through an operation meanwhile.
    pub fn exclusive<T>(
        &self,
        f: impl FnOnce(&Table) -> Result<T, SnapshotError>,
    ) -> Result<T, SnapshotError> {
        let _lock = self.lock(rustix::fs::FlockOperation::LockExclusive)?;
        f(&self.load()?)
    }

    /// Reads the table under a shared lock.
    pub fn read(&self) -> Result<Table, SnapshotError> {
        let _lock = self.lock(rustix::fs::FlockOperation::LockShared)?;
        self.load()
    }
}

pub(crate) fn now() -> u64 {
    crate::content::now_secs()
}
