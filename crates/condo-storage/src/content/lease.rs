//! Leases: named sets of blobs (and ingests) that GC must keep while an operation runs.

use super::{ioe, ContentError, ContentStore};
use crate::digest::Digest;
use crate::fsutil;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A lease and what it holds.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    /// The lease's name.
    pub id: String,
    /// Seconds since the epoch after which GC may drop it; `None` keeps it until deleted.
    pub expires: Option<u64>,
    /// Blobs it keeps.
    pub blobs: BTreeSet<Digest>,
}

impl ContentStore {
    fn lease_path(&self, id: &str) -> Result<PathBuf, ContentError> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || id.starts_with('.')
        {
            return Err(ContentError::BadRef(id.into()));
        }
        Ok(self.root.join("leases").join(format!("{id}.json")))
    }

    /// Creates (or replaces) a lease that expires after `ttl` seconds, or never.
    pub fn lease_create(&self, id: &str, ttl: Option<u64>) -> Result<Lease, ContentError> {
        let now = now_secs();
        let lease = Lease {
            id: id.into(),
            expires: ttl.map(|t| now + t),
            blobs: BTreeSet::new(),
        };
        let p = self.lease_path(id)?;
        fsutil::write_json(&p, &lease).map_err(ioe("write", &p))?;
        Ok(lease)
    }

    /// Adds a blob to a lease.
    pub fn lease_add(&self, id: &str, d: &Digest) -> Result<(), ContentError> {
        let p = self.lease_path(id)?;
        let mut l: Lease = fsutil::read_json(&p)
            .map_err(ioe("read", &p))?
            .ok_or_else(|| ContentError::NoLease(id.into()))?;
        if l.blobs.insert(d.clone()) {
            fsutil::write_json(&p, &l).map_err(ioe("write", &p))?;
        }
        Ok(())
    }

    /// Deletes a lease; what it held becomes collectable.
    pub fn lease_delete(&self, id: &str) -> Result<(), ContentError> {
        let p = self.lease_path(id)?;
        fsutil::remove_all(&p).map_err(ioe("remove", &p))
    }

    /// Every lease that has not expired.
    pub fn leases(&self) -> Result<Vec<Lease>, ContentError> {
        let dir = self.root.join("leases");
        let now = now_secs();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(ioe("list", &dir))? {
            let p = e.map_err(ioe("list", &dir))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Some(l) = fsutil::read_json::<Lease>(&p).map_err(ioe("read", &p))? {
                    if l.expires.is_none_or(|t| t > now) {
                        out.push(l);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
