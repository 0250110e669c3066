//! Garbage collection: mark from roots (callers' records plus leases), sweep the rest.

use super::{ioe, ContentError, ContentStore};
use crate::digest::Digest;
use crate::fsutil;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// What a collection removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed.
    pub bytes: u64,
    /// Stale ingests removed.
    pub ingests: usize,
}

/// Manifests and indexes larger than this are not parsed for references.
const MAX_MANIFEST: u64 = 4 << 20;

/// The digests a blob refers to if it is an image index or manifest (JSON with
/// `manifests`, `config` or `layers`); anything else refers to nothing.
pub fn children(store: &ContentStore, d: &Digest) -> Vec<Digest> {
    let Ok(size) = store.size(d) else {
        return Vec::new();
    };
    if size > MAX_MANIFEST {
        return Vec::new();
    }
    let Ok(data) = std::fs::read(store.blob_path(d)) else {
        return Vec::new();
    };
    if data.first() != Some(&b'{') {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut take = |x: &serde_json::Value| {
        if let Some(Ok(d)) = x.get("digest").and_then(|s| s.as_str()).map(Digest::parse) {
            out.push(d);
        }
    };
    for key in ["manifests", "layers"] {
        if let Some(arr) = v.get(key).and_then(|a| a.as_array()) {
            arr.iter().for_each(&mut take);
        }
    }
    if let Some(c) = v.get("config") {
        take(c);
    }
    out
}

impl ContentStore {
    /// Removes every blob not reachable from `roots` or a live lease, and ingests idle
    /// for longer than `stale_ingest`.
    pub fn gc(
        &self,
        roots: impl IntoIterator<Item = Digest>,
        stale_ingest: Duration,
    ) -> Result<GcReport, ContentError> {
        let mut live = BTreeSet::new();
        let mut stack: Vec<Digest> = roots.into_iter().collect();
        for l in self.leases()? {
            stack.extend(l.blobs);
        }
        while let Some(d) = stack.pop() {
            if live.insert(d.clone()) {
                stack.extend(children(self, &d));
            }
        }
        let mut report = GcReport::default();
        for d in self.list()? {
            if !live.contains(&d) {
                report.bytes += self.size(&d).unwrap_or(0);
                self.delete(&d)?;
                report.removed.push(d);
            }
        }
        let dir = self.root.join("ingest");
        let now = SystemTime::now();
        for e in std::fs::read_dir(&dir).map_err(ioe("list", &dir))? {
            let p = e.map_err(ioe("list", &dir))?.path();
            let idle = std::fs::metadata(p.join("data"))
                .or_else(|_| std::fs::metadata(&p))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or(Duration::MAX);
            if idle >= stale_ingest {
                fsutil::remove_all(&p).map_err(ioe("remove", &p))?;
                report.ingests += 1;
            }
        }
        Ok(report)
    }
}
