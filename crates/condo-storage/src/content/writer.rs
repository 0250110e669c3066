//! Resumable ingest writer and a verifying reader.

use super::{ioe, ContentError, ContentStore};
use crate::digest::Digest;
use crate::fsutil;
use sha2::Digest as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// An in-progress ingest: data goes to a file in the store that no reader sees until commit.
pub struct Writer {
    store: ContentStore,
    reference: String,
    dir: PathBuf,
    data: PathBuf,
    file: File,
    hasher: sha2::Sha256,
    offset: u64,
}

impl Writer {
    pub(super) fn open(store: &ContentStore, reference: &str) -> Result<Self, ContentError> {
        let dir = store.ingest_dir(reference)?;
        fs::create_dir_all(&dir).map_err(ioe("create", &dir))?;
        let refp = dir.join("ref");
        if !refp.exists() {
            fsutil::write_atomic(&refp, reference.as_bytes()).map_err(ioe("write", &refp))?;
        }
        let data = dir.join("data");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data)
            .map_err(ioe("open", &data))?;
        // Resuming: re-hash what an earlier (possibly killed) writer left.
        let mut hasher = sha2::Sha256::new();
        let offset = io::copy(&mut file, &mut hasher).map_err(ioe("read", &data))?;
        Ok(Self {
            store: store.clone(),
            reference: reference.into(),
            dir,
            data,
            file,
            hasher,
            offset,
        })
    }

    /// Bytes already written (a resumed ingest starts past 0).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The reference this ingest was opened with.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The file the data goes to.
    pub fn data_path(&self) -> &Path {
        &self.data
    }

    /// Throws away what was written so far.
    pub fn truncate(&mut self) -> Result<(), ContentError> {
        self.file.set_len(0).map_err(ioe("truncate", &self.data))?;
        self.file
            .seek(io::SeekFrom::Start(0))
            .map_err(ioe("seek", &self.data))?;
        self.hasher = sha2::Sha256::new();
        self.offset = 0;
        Ok(())
    }

    /// Appends bytes.
    pub fn write_all_bytes(&mut self, b: &[u8]) -> Result<(), ContentError> {
        let p = self.data.clone();
        self.write_all(b).map_err(ioe("write", &p))
    }

    /// Verifies size and digest, then makes the blob visible atomically and durably.
    pub fn commit(
        mut self,
        size: Option<u64>,
        expected: Option<&Digest>,
    ) -> Result<Digest, ContentError> {
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        let fail = |e: ContentError| {
            let _ = fsutil::remove_all(&self.dir);
            Err(e)
        };
        if let Some(s) = size {
            if s != self.offset {
                return fail(ContentError::SizeMismatch {
                    reference: self.reference.clone(),
                    expected: s,
                    actual: self.offset,
                });
            }
        }
        if let Some(e) = expected {
            if e != &actual {
                return fail(ContentError::DigestMismatch {
                    reference: self.reference.clone(),
                    expected: e.clone(),
                    actual,
                });
            }
        }
        self.file.sync_all().map_err(ioe("fsync", &self.data))?;
        let dest = self.store.blob_path(&actual);
        if !dest.exists() {
            fs::rename(&self.data, &dest).map_err(ioe("rename", &dest))?;
            let dir = dest.parent().unwrap_or(Path::new("."));
            fsutil::fsync_dir(dir).map_err(ioe("fsync", dir))?;
        }
        fsutil::remove_all(&self.dir).map_err(ioe("remove", &self.dir))?;
        Ok(actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A reader that hashes what passes through and fails at the end on a digest or size mismatch.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    expected: Digest,
    size: u64,
    read: u64,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps a reader expected to yield `size` bytes hashing to `expected`.
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            expected,
            size,
            read: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 && !buf.is_empty() && !self.done {
            if self.read != self.size {
                return Err(io::Error::other(ContentError::SizeMismatch {
                    reference: self.expected.to_string(),
                    expected: self.size,
                    actual: self.read,
                }));
            }
            let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
            if actual != self.expected {
                return Err(io::Error::other(ContentError::DigestMismatch {
                    reference: format!("blob {}", self.expected),
                    expected: self.expected.clone(),
                    actual,
                }));
            }
            self.done = true;
        }
        Ok(n)
    }
}

/// Recovers a content error carried inside an I/O error by [`VerifyingReader`].
pub(crate) fn into_content_error(e: io::Error) -> Result<ContentError, io::Error> {
    if e.get_ref().is_some_and(|i| i.is::<ContentError>()) {
        let inner = e.into_inner().expect("checked above");
        return Ok(*inner.downcast::<ContentError>().expect("checked above"));
    }
    Err(e)
}
