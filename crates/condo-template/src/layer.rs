//! Turning what a build step changed into an OCI layer (an uncompressed tar in the content
//! store): overlay whiteouts become `.wh.` entries; on full-tree backends the tree is compared
//! with its parent's.

use condo_storage::content::{ContentError, ContentStore};
use condo_storage::Digest;
use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A layer written to the content store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerBlob {
    /// The tar's digest (also its diff id: it is not compressed).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A reason a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading the tree or writing the tar failed.
    #[error("layer from {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The content store refused the blob.
    #[error(transparent)]
    Content(#[from] ContentError),
}

fn ioe(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.into(),
        source,
    }
}

/// Writes the layer of `diff` (an overlay upper directory when `parent` is None, else a full
/// tree compared with the full tree `parent`) into `content`.
pub fn write_layer(
    content: &ContentStore,
    diff: &Path,
    parent: Option<&Path>,
) -> Result<LayerBlob, LayerError> {
    let reference = format!("layer-{}-{}", std::process::id(), unique());
    let mut w = content.writer(&reference)?;
    w.truncate()?;
    let mut tar = tar::Builder::new(w);
    tar.follow_symlinks(false);
    let mut links = HashMap::new();
    let res = match parent {
        None => walk_overlay(&mut tar, diff, Path::new(""), &mut links),
        Some(p) => walk_diff(&mut tar, diff, p, Path::new(""), &mut links),
    };
    let res = res.and_then(|()| tar.finish().map_err(ioe(diff)));
    let w = match res.and_then(|()| tar.into_inner().map_err(ioe(diff))) {
        Ok(w) => w,
        Err(e) => {
            let _ = content.abort(&reference);
            return Err(e);
        }
    };
    let size = w.offset();
    let digest = w.commit(Some(size), None)?;
    Ok(LayerBlob { digest, size })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

type Tar = tar::Builder<condo_storage::content::Writer>;

fn sorted(dir: &Path) -> Result<Vec<(String, Metadata)>, LayerError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(ioe(dir))? {
        let e = e.map_err(ioe(dir))?;
        let m = e.metadata().map_err(ioe(&e.path()))?;
        out.push((e.file_name().to_string_lossy().into_owned(), m));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if let Ok(n) = rustix::fs::lgetxattr(p, name, &mut buf) {
            if n >= 1 && buf[0] == b'y' {
                return true;
            }
        }
    }
    false
}

fn walk_overlay(
    tar: &mut Tar,
    dir: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), LayerError> {
    for (name, m) in sorted(dir)? {
        let full = dir.join(&name);
        let r = rel.join(&name);
        if is_whiteout(&m) {
            empty_entry(tar, &rel.join(format!(".wh.{name}")), &full)?;
            continue;
        }
        append(tar, &full, &r, &m, links)?;
        if m.is_dir() {
            if is_opaque(&full) {
                empty_entry(tar, &r.join(".wh..wh..opq"), &full)?;
            }
            walk_overlay(tar, &full, &r, links)?;
        }
    }
    Ok(())
}

fn differs(n: &Metadata, o: &Metadata) -> bool {
    n.mode() != o.mode()
        || n.uid() != o.uid()
        || n.gid() != o.gid()
        || n.rdev() != o.rdev()
        || (!n.is_dir()
            && (n.len() != o.len() || n.mtime() != o.mtime() || n.mtime_nsec() != o.mtime_nsec()))
}

fn walk_diff(
    tar: &mut Tar,
    dir: &Path,
    old: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), LayerError> {
    let new = sorted(dir)?;
    let before: HashMap<String, Metadata> = match fs::symlink_metadata(old) {
        Ok(m) if m.is_dir() => sorted(old)?.into_iter().collect(),
        _ => HashMap::new(),
    };
    for name in before.keys() {
        if !new.iter().any(|(n, _)| n == name) {
            empty_entry(tar, &rel.join(format!(".wh.{name}")), &dir.join(name))?;
        }
    }
    for (name, m) in new {
        let full = dir.join(&name);
        let r = rel.join(&name);
        let prev = before.get(&name);
        let same_kind = prev.is_some_and(|o| o.file_type() == m.file_type());
        let changed = match prev {
            None => true,
            Some(o) => {
                !same_kind
                    || differs(&m, o)
                    || (m.file_type().is_symlink()
                        && fs::read_link(&full).ok() != fs::read_link(old.join(&name)).ok())
            }
        };
        if prev.is_some() && !same_kind {
            empty_entry(tar, &rel.join(format!(".wh.{name}")), &full)?;
        }
        if changed || m.is_dir() {
            // Directories are always written: cheap, and their children need a parent entry.
            append(tar, &full, &r, &m, links)?;
        }
        if m.is_dir() {
            walk_diff(tar, &full, &old.join(&name), &r, links)?;
        }
    }
    Ok(())
}

fn empty_entry(tar: &mut Tar, rel: &Path, at: &Path) -> Result<(), LayerError> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o600);
    h.set_mtime(0);
    tar.append_data(&mut h, rel, io::empty()).map_err(ioe(at))
}

fn append(
    tar: &mut Tar,
    full: &Path,
    rel: &Path,
    m: &Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), LayerError> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
    h.set_mode(m.mode() & 0o7777);
    let ft = m.file_type();
    if ft.is_file() && m.nlink() > 1 {
        if let Some(first) = links.get(&(m.dev(), m.ino())) {
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            return tar.append_link(&mut h, rel, first).map_err(ioe(full));
        }
        links.insert((m.dev(), m.ino()), rel.to_path_buf());
    }
    if ft.is_symlink() {
        let target = fs::read_link(full).map_err(ioe(full))?;
        return tar.append_link(&mut h, rel, target).map_err(ioe(full));
    }
    if ft.is_char_device() || ft.is_block_device() {
        let (maj, min) = (libc::major(m.rdev()), libc::minor(m.rdev()));
        h.set_device_major(maj).map_err(ioe(full))?;
        h.set_device_minor(min).map_err(ioe(full))?;
    }
    if ft.is_file() {
        let f = fs::File::open(full).map_err(ioe(full))?;
        return tar.append_data(&mut h, rel, f).map_err(ioe(full));
    }
    h.set_size(0);
    tar.append_data(&mut h, rel, io::empty()).map_err(ioe(full))
}
