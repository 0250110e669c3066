//! Digest-addressed blob store with verified, atomic, resumable ingest, leases and GC.
//!
//! Layout under the root: `blobs/sha256/<hex>` (committed, immutable), `ingest/<ref>/data`
//! (in-progress writes, invisible until committed), `leases/<id>.json`.

mod gc;
mod lease;
mod writer;

pub use gc::GcReport;
pub use lease::{now_secs, Lease};
pub use writer::{VerifyingReader, Writer};

use crate::digest::{Digest, DigestError};
use crate::fsutil;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// A reason a content-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A blob is not in the store.
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
    /// Ingested data does not hash to the expected digest.
    #[error("digest mismatch for {reference}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The ingest reference or blob.
        reference: String,
        /// What the caller expected.
        expected: Digest,
        /// What the data hashes to.
        actual: Digest,
    },
    /// Ingested data does not have the expected size.
    #[error("size mismatch for {reference}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The ingest reference or blob.
        reference: String,
        /// What the caller expected.
        expected: u64,
        /// What was written.
        actual: u64,
    },
    /// An ingest reference holds characters that cannot name a directory.
    #[error("invalid ingest reference {0:?}")]
    BadRef(String),
    /// A lease is unknown.
    #[error("lease {0:?} not found")]
    NoLease(String),
    /// A blob is too large to be read into memory.
    #[error("blob {0} is too large to read into memory ({1} bytes)")]
    TooLarge(Digest, u64),
    /// A digest was malformed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// An I/O error on a path.
    #[error("content store: {what} {path}: {source}")]
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
    path: &'a Path,
) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A content store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) a content store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ContentError> {
        let root = root.into();
        for d in ["blobs/sha256", "ingest", "leases"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(ioe("create", &p))?;
        }
        Ok(Self { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a committed blob (it may not exist).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Whether a blob is committed.
    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The size of a committed blob.
    pub fn size(&self, d: &Digest) -> Result<u64, ContentError> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(ioe("stat", &self.blob_path(d))(e)),
        }
    }

    /// Opens a committed blob for reading (not verified; see [`ContentStore::open_verified`]).
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::NotFound(d.clone()),
            _ => ioe("open", &p)(e),
        })
    }

    /// Opens a blob through a reader that fails at the end if the data does not match its digest.
    pub fn open_verified(&self, d: &Digest) -> Result<VerifyingReader<File>, ContentError> {
        let size = self.size(d)?;
        Ok(VerifyingReader::new(self.open_blob(d)?, d.clone(), size))
    }

    /// Reads a whole (small) blob, verifying its digest.
    pub fn read(&self, d: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let size = self.size(d)?;
        if size > limit {
            return Err(ContentError::TooLarge(d.clone(), size));
        }
        let mut buf = Vec::with_capacity(size as usize);
        let p = self.blob_path(d);
        self.open_blob(d)?
            .read_to_end(&mut buf)
            .map_err(ioe("read", &p))?;
        let actual = Digest::of(&buf);
        if &actual != d {
            return Err(ContentError::DigestMismatch {
                reference: p.display().to_string(),
                expected: d.clone(),
                actual,
            });
        }
        Ok(buf)
    }

    /// Re-hashes a committed blob; a corrupt blob is an error naming it.
    pub fn verify(&self, d: &Digest) -> Result<(), ContentError> {
        let mut r = self.open_verified(d)?;
        let p = self.blob_path(d);
        io::copy(&mut r, &mut io::sink()).map_err(|e| match writer::into_content_error(e) {
            Ok(ce) => ce,
            Err(e) => ioe("read", &p)(e),
        })?;
        Ok(())
    }

    /// Stores bytes whose digest may be known; returns their digest.
    pub fn put(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest, ContentError> {
        let actual = Digest::of(data);
        if let Some(e) = expected {
            if e != &actual {
                return Err(ContentError::DigestMismatch {
                    reference: e.to_string(),
                    expected: e.clone(),
                    actual,
                });
            }
        }
        if self.exists(&actual) {
            return Ok(actual);
        }
        let mut w = self.writer(&format!("put-{}", actual.hex()))?;
        w.truncate()?;
        w.write_all_bytes(data)?;
        w.commit(Some(data.len() as u64), Some(&actual))
    }

    /// Ingests a stream, verifying its digest and size if known.
    pub fn ingest(
        &self,
        reference: &str,
        mut r: impl Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        if let Some(d) = expected {
            if self.exists(d) {
                return Ok(d.clone());
            }
        }
        let mut w = self.writer(reference)?;
        w.truncate()?;
        let p = w.data_path().to_path_buf();
        io::copy(&mut r, &mut w).map_err(ioe("ingest", &p))?;
        w.commit(size, expected)
    }

    /// Opens (or resumes) the ingest named `reference`; its offset says how much is already there.
    pub fn writer(&self, reference: &str) -> Result<Writer, ContentError> {
        Writer::open(self, reference)
    }

    /// Drops an in-progress ingest.
    pub fn abort(&self, reference: &str) -> Result<(), ContentError> {
        let p = self.ingest_dir(reference)?;
        fsutil::remove_all(&p).map_err(ioe("remove", &p))
    }

    /// Removes a committed blob (GC normally does this).
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(ioe("remove", &p)(e)),
        }
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(ioe("list", &dir))? {
            let e = e.map_err(ioe("list", &dir))?;
            if let Some(name) = e.file_name().to_str() {
                if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The names of in-progress ingests.
    pub fn ingests(&self) -> Result<Vec<String>, ContentError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(ioe("list", &dir))? {
            let e = e.map_err(ioe("list", &dir))?;
            if let Ok(r) = fs::read_to_string(e.path().join("ref")) {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub(crate) fn ingest_dir(&self, reference: &str) -> Result<PathBuf, ContentError> {
        if reference.is_empty() || reference.len() > 1024 {
            return Err(ContentError::BadRef(reference.into()));
        }
        // The reference is hashed so that any string names one safe directory.
        Ok(self
            .root
            .join("ingest")
            .join(Digest::of(reference.as_bytes()).hex()))
    }
}

/// Recovers a content-store error carried inside an I/O error (from a [`VerifyingReader`]).
pub fn writer_error(e: io::Error) -> Result<ContentError, io::Error> {
    writer::into_content_error(e)
}
