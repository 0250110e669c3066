//! OCI images: records (name → manifest), import of OCI layouts and docker-archives, export,
//! registry pull, and unpacking layers into snapshots.

pub mod archive;
mod fsat;
pub mod pull;
pub mod reference;
pub mod rootfs;
pub mod types;
pub mod unpack;

use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::fsutil;
use std::path::PathBuf;
use types::{Descriptor, Index, Manifest};

/// A reason an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image has this name.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// A document is not valid JSON of the expected shape.
    #[error("malformed {0}")]
    Malformed(String),
    /// A media type Condo does not handle.
    #[error("unknown media type {0:?} for {1}")]
    MediaType(String, Digest),
    /// An index has no linux/amd64 image.
    #[error("image index {0} has no linux/amd64 manifest")]
    NoPlatform(Digest),
    /// An image reference does not parse.
    #[error("invalid image reference {0:?}: {1}")]
    Reference(String, &'static str),
    /// An archive or layout is unusable.
    #[error("{0}")]
    Archive(String),
    /// A registry request failed.
    #[error("registry {url}: {reason}")]
    Registry {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Unpacking a layer failed.
    #[error("layer {digest}: {source}")]
    Unpack {
        /// The layer.
        digest: Digest,
        /// The cause.
        source: unpack::UnpackError,
    },
    /// A snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// An I/O error on a path.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

pub(crate) fn ioe<'a>(
    what: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The record of one named image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// Its name ("registry/repo:tag").
    pub name: String,
    /// Its manifest.
    pub target: Descriptor,
    /// Seconds since the epoch.
    pub created: u64,
}

/// Named images over a content store; records are small JSON files.
///
/// One store holds several independent sets of names: the top one and its scopes
/// ([`ImageStore::scoped`]), each a directory of records under `root/scopes/`. All of them share
/// the content store, so a blob is kept once however many scopes name it, and [`ImageStore::gc`]
/// from any of them keeps every blob some scope's record reaches.
#[derive(Debug, Clone)]
pub struct ImageStore {
    content: ContentStore,
    /// The top store's directory.
    base: PathBuf,
    /// This scope's directory (`base` for the top store).
    root: PathBuf,
}

/// Largest manifest or config read into memory.
pub const MAX_DOC: u64 = 4 << 20;

impl ImageStore {
    /// Opens (creating if needed) an image index at `root` over `content`.
    pub fn open(root: impl Into<PathBuf>, content: ContentStore) -> Result<Self, ImageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(ioe("create", &root))?;
        Ok(Self {
            content,
            base: root.clone(),
            root,
        })
    }

    /// Whether `scope` may name a scope: letters, digits, `_ . -`, not only dots, at most 128.
    pub fn valid_scope(scope: &str) -> bool {
        !scope.is_empty()
            && scope.len() <= 128
            && scope.chars().any(|c| c != '.')
            && scope
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    }

    fn scopes_dir(&self) -> PathBuf {
        self.base.join("scopes")
    }

    /// The names of scope `scope`, over the same content; names in it neither see nor move the
    /// names of the top store or of other scopes. Its directory is made by its first record:
    /// looking a name up changes nothing.
    pub fn scoped(&self, scope: &str) -> Result<ImageStore, ImageError> {
        if !Self::valid_scope(scope) {
            return Err(ImageError::Malformed(format!(
                "image scope \"{scope}\" is not a scope name"
            )));
        }
        let root = self.scopes_dir().join(scope);
        Ok(Self {
            content: self.content.clone(),
            base: self.base.clone(),
            root,
        })
    }

    /// Removes scope `scope` with its names (its blobs go at the next [`ImageStore::gc`]).
    pub fn remove_scope(&self, scope: &str) -> Result<(), ImageError> {
        if !Self::valid_scope(scope) {
            return Err(ImageError::NotFound(scope.into()));
        }
        let p = self.scopes_dir().join(scope);
        fsutil::remove_all(&p).map_err(ioe("remove", &p))
    }

    /// The scopes that hold at least one name.
    pub fn scopes(&self) -> Result<Vec<String>, ImageError> {
        let dir = self.scopes_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ioe("list", &dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && Self::valid_scope(&name) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every record of the top store and of every scope: what garbage collection keeps.
    pub fn all_records(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let top = ImageStore {
            root: self.base.clone(),
            ..self.clone()
        };
        let mut out = top.list()?;
        for s in self.scopes()? {
            out.extend(top.scoped(&s)?.list()?);
        }
        Ok(out)
    }

    /// The content store underneath.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    fn path(&self, name: &str) -> PathBuf {
        // Names hold '/' and ':'; their digest is a safe file name.
        self.root
            .join(format!("{}.json", Digest::of(name.as_bytes()).hex()))
    }

    /// Records (or moves) `name` to point at `target`, whose blobs must be in the store.
    pub fn put(&self, name: &str, target: Descriptor) -> Result<ImageRecord, ImageError> {
        if !self.content.exists(&target.digest) {
            return Err(ContentError::NotFound(target.digest).into());
        }
        let r = ImageRecord {
            name: name.into(),
            target,
            created: crate::content::now_secs(),
        };
        std::fs::create_dir_all(&self.root).map_err(ioe("create", &self.root))?;
        let p = self.path(name);
        fsutil::write_json(&p, &r).map_err(ioe("write", &p))?;
        Ok(r)
    }

    /// The record of `name`.
    pub fn get(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let p = self.path(name);
        fsutil::read_json(&p)
            .map_err(ioe("read", &p))?
            .ok_or_else(|| ImageError::NotFound(name.into()))
    }

    /// Every record.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            // A scope without a record yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(ioe("list", &self.root)(e)),
        };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                if let Some(r) =
                    fsutil::read_json::<ImageRecord>(&e.path()).map_err(ioe("read", &e.path()))?
                {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Forgets `name` (its blobs go at the next [`ImageStore::gc`]).
    pub fn delete(&self, name: &str) -> Result<(), ImageError> {
        let p = self.path(name);
        if !p.exists() {
            return Err(ImageError::NotFound(name.into()));
        }
        fsutil::remove_all(&p).map_err(ioe("remove", &p))
    }

    /// Collects blobs no record (of any scope) or lease reaches.
    pub fn gc(&self) -> Result<crate::content::GcReport, ImageError> {
        let roots = self.all_records()?.into_iter().map(|r| r.target.digest);
        Ok(self
            .content
            .gc(roots, std::time::Duration::from_secs(24 * 3600))?)
    }

    /// The image manifest behind a descriptor (following an index to linux/amd64).
    pub fn manifest(&self, d: &Descriptor) -> Result<(Descriptor, Manifest), ImageError> {
        let data = self.content.read(&d.digest, MAX_DOC)?;
        if types::is_index(&d.media_type) {
            let idx = Index::parse(&data)?;
            let m = idx
                .pick_linux_amd64()
                .ok_or_else(|| ImageError::NoPlatform(d.digest.clone()))?
                .clone();
            return self.manifest(&m);
        }
        if !types::is_manifest(&d.media_type) {
            return Err(ImageError::MediaType(
                d.media_type.clone(),
                d.digest.clone(),
            ));
        }
        Ok((d.clone(), Manifest::parse(&data)?))
    }

    /// The image config of a manifest, as JSON.
    pub fn config(&self, m: &Manifest) -> Result<serde_json::Value, ImageError> {
        let data = self.content.read(&m.config.digest, MAX_DOC)?;
        serde_json::from_slice(&data)
            .map_err(|e| ImageError::Malformed(format!("image config {}: {e}", m.config.digest)))
    }
}
