//! Safe layer unpacking: tar (plain, gzip or zstd) into a directory, every path resolved
//! beneath the target with `openat2(RESOLVE_BENEATH)`, never through tar's own `unpack`.
//!
//! Whiteouts become overlay whiteouts (character device 0/0, `trusted.overlay.opaque`) for a
//! layer that will be an overlay lower, or deletions when layers are flattened onto one tree.

use crate::content::ContentError;
use crate::fsutil;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use super::fsat::{list_dir, remove_at, replace};

/// A reason a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry's path or link would leave the target.
    #[error("layer entry {entry:?}: {reason}")]
    Escape {
        /// The entry's name as written in the archive.
        entry: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An entry could not be created.
    #[error("layer entry {entry:?}: {source}")]
    Entry {
        /// The entry's name as written in the archive.
        entry: String,
        /// The cause.
        source: io::Error,
    },
    /// The archive itself is unreadable (truncated, corrupt compression, bad header).
    #[error("reading layer archive: {0}")]
    Archive(io::Error),
    /// The blob behind the stream failed verification.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The target directory could not be prepared.
    #[error("unpack target {path}: {source}")]
    Target {
        /// The target.
        path: std::path::PathBuf,
        /// The cause.
        source: io::Error,
    },
}

fn archive_err(e: io::Error) -> UnpackError {
    match crate::content::writer_error(e) {
        Ok(c) => UnpackError::Content(c),
        Err(e) => UnpackError::Archive(e),
    }
}

/// How whiteout entries are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// As overlayfs whiteouts and opaque markers (the layer becomes an overlay lower dir).
    Overlay,
    /// As deletions in the tree the layer is applied onto.
    Delete,
}

/// What an unpack did.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    /// Entries processed.
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Wraps a layer stream in the right decompressor, sniffing gzip and zstd magic numbers.
pub fn decompress<'a>(r: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut br = BufReader::with_capacity(256 << 10, r);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(br)?))
    } else {
        Ok(Box::new(br))
    }
}

/// Unpacks a layer into `dest`, which must not exist: the work happens in a temporary
/// sibling that is renamed into place on success and removed on any error.
pub fn unpack_new(
    r: impl Read + Send,
    dest: &Path,
    mode: Whiteouts,
) -> Result<UnpackStats, UnpackError> {
    let terr = |source| UnpackError::Target {
        path: dest.to_path_buf(),
        source,
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(fsutil::temp_name("unpack"));
    std::fs::create_dir(&tmp).map_err(terr)?;
    let res = apply(r, &tmp, mode).and_then(|s| {
        std::fs::rename(&tmp, dest).map_err(terr)?;
        Ok(s)
    });
    if res.is_err() {
        let _ = fsutil::remove_all(&tmp);
    }
    res
}

/// Applies a layer onto an existing directory (which the caller discards if this fails).
pub fn apply(
    r: impl Read + Send,
    root: &Path,
    mode: Whiteouts,
) -> Result<UnpackStats, UnpackError> {
    let mut u = Unpacker::new(root, mode)?;
    let mut ar = tar::Archive::new(decompress(r).map_err(archive_err)?);
    for entry in ar.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        u.entry(&mut entry, None)?;
    }
    u.finish()?;
    Ok(u.stats)
}

/// Applies tar entries one at a time (for streams that carry several trees).
pub(crate) struct Unpacker {
    root: OwnedFd,
    mode: Whiteouts,
    cached: Option<(Vec<u8>, Rc<OwnedFd>)>,
    dirs: Vec<(Vec<u8>, u64)>,
    created: HashSet<Vec<u8>>,
    buf: Vec<u8>,
    stats: UnpackStats,
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);
const WH: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Normalizes an archive path to `a/b/c`, refusing absolute paths and `..`.
fn clean(raw: &[u8], show: &str) -> Result<Vec<u8>, UnpackError> {
    if raw.starts_with(b"/") {
        return Err(UnpackError::Escape {
            entry: show.into(),
            reason: "absolute path refused",
        });
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(UnpackError::Escape {
                    entry: show.into(),
                    reason: "path contains \"..\"",
                })
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

fn split(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (b"", p),
    }
}

fn osstr(b: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b)
}

fn ts(secs: u64) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: secs as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Unpacker {
    pub(crate) fn new(root: &Path, mode: Whiteouts) -> Result<Self, UnpackError> {
        let root_fd = rfs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| UnpackError::Target {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Self {
            root: root_fd,
            mode,
            cached: None,
            dirs: Vec::new(),
            created: HashSet::new(),
            buf: vec![0u8; 256 << 10],
            stats: UnpackStats::default(),
        })
    }

    /// Applies one entry, named `path` instead of its own name if given.
    pub(crate) fn entry<R: Read>(
        &mut self,
        e: &mut tar::Entry<R>,
        path: Option<Vec<u8>>,
    ) -> Result<(), UnpackError> {
        let raw = path.unwrap_or_else(|| e.path_bytes().into_owned());
        let show = String::from_utf8_lossy(&raw).into_owned();
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        self.stats.entries += 1;
        let path = clean(&raw, &show)?;
        let ent = |source: io::Error| UnpackError::Entry {
            entry: show.clone(),
            source,
        };
        let (dir, name) = split(&path);
        if name.is_empty() {
            // The archive's "./" entry: the root directory itself.
            if kind.is_dir() {
                let h = e.header();
                let m = h.mode().map_err(ent)?;
                rfs::fchmod(&self.root, Mode::from_raw_mode(m & 0o7777))
                    .map_err(|e| ent(e.into()))?;
            }
            return Ok(());
        }
        // An entry that replaces the cached directory or one of its ancestors invalidates it.
        if let Some((c, _)) = &self.cached {
            if c.starts_with(&path) && (c.len() == path.len() || c[path.len()] == b'/') {
                self.cached = None;
            }
        }
        let dir = dir.to_vec();
        let name = name.to_vec();
        if name.starts_with(WH) {
            return self.whiteout(&show, &dir, &name);
        }
        let parent = self.parent(&dir, &show)?;
        let h = e.header().clone();
        let mode = Mode::from_raw_mode(h.mode().map_err(ent)? & 0o7777);
        let uid = rfs::Uid::from_raw(h.uid().map_err(ent)? as u32);
        let gid = rfs::Gid::from_raw(h.gid().map_err(ent)? as u32);
        let mtime = h.mtime().map_err(ent)?;
        let xattrs = xattrs(e).map_err(ent)?;
        let n = osstr(&name);
        if self.mode == Whiteouts::Delete {
            self.created.insert(path.clone());
        }
        match kind {
            tar::EntryType::Directory => {
                match rfs::mkdirat(&parent, n, mode) {
                    Err(Errno::EXIST) => {
                        let st = rfs::statat(&parent, n, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| ent(e.into()))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            remove_at(&parent, n).map_err(ent)?;
                            rfs::mkdirat(&parent, n, mode).map_err(|e| ent(e.into()))?;
                        }
                    }
                    r => r.map_err(|e| ent(e.into()))?,
                }
                let fd = rfs::openat(
                    &parent,
                    n,
                    OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ent(e.into()))?;
                rfs::fchown(&fd, Some(uid), Some(gid)).map_err(|e| ent(e.into()))?;
                rfs::fchmod(&fd, mode).map_err(|e| ent(e.into()))?;
                for (k, v) in &xattrs {
                    rfs::fsetxattr(&fd, osstr(k), v, XattrFlags::empty())
                        .map_err(|e| ent(e.into()))?;
                }
                self.dirs.push((path, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = match rfs::openat(&parent, n, flags, mode) {
                    Err(Errno::EXIST) => {
                        remove_at(&parent, n).map_err(ent)?;
                        rfs::openat(&parent, n, flags, mode)
                    }
                    r => r,
                }
                .map_err(|e| ent(e.into()))?;
                let mut f = File::from(fd);
                loop {
                    let k = match e.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(archive_err(e)),
                    };
                    f.write_all(&self.buf[..k]).map_err(ent)?;
                    self.stats.bytes += k as u64;
                }
                // Ownership first: chown clears set-id bits and security.capability.
                rfs::fchown(&f, Some(uid), Some(gid)).map_err(|e| ent(e.into()))?;
                rfs::fchmod(&f, mode).map_err(|e| ent(e.into()))?;
                for (k, v) in &xattrs {
                    rfs::fsetxattr(&f, osstr(k), v, XattrFlags::empty())
                        .map_err(|e| ent(e.into()))?;
                }
                rfs::futimens(&f, &ts(mtime)).map_err(|e| ent(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| ent(io::Error::other("symlink without a target")))?;
                replace(&parent, n, |p, n| rfs::symlinkat(osstr(&target), p, n)).map_err(ent)?;
                self.meta_at(&parent, n, uid, gid, None, &xattrs, mtime)
                    .map_err(ent)?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| ent(io::Error::other("hard link without a target")))?;
                let tpath = clean(&target, &show).map_err(|_| UnpackError::Escape {
                    entry: show.clone(),
                    reason: "hard link target outside the layer",
                })?;
                let (tdir, tname) = split(&tpath);
                let tdir_fd = self.open_dir(tdir).map_err(|_| UnpackError::Escape {
                    entry: show.clone(),
                    reason: "hard link target outside the layer or missing",
                })?;
                let tname = tname.to_vec();
                replace(&parent, n, |p, n| {
                    rfs::linkat(&tdir_fd, osstr(&tname), p, n, AtFlags::empty())
                })
                .map_err(ent)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let maj = h.device_major().map_err(ent)?.unwrap_or(0);
                let min = h.device_minor().map_err(ent)?.unwrap_or(0);
                replace(&parent, n, |p, n| {
                    rfs::mknodat(p, n, ft, mode, rfs::makedev(maj, min))
                })
                .map_err(ent)?;
                self.meta_at(&parent, n, uid, gid, Some(mode), &xattrs, mtime)
                    .map_err(ent)?;
            }
            other => {
                return Err(ent(io::Error::other(format!(
                    "unsupported tar entry type {other:?}"
                ))));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn meta_at(
        &self,
        parent: &OwnedFd,
        n: &std::ffi::OsStr,
        uid: rfs::Uid,
        gid: rfs::Gid,
        mode: Option<Mode>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        mtime: u64,
    ) -> io::Result<()> {
        rfs::chownat(parent, n, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
        if let Some(m) = mode {
            rfs::chmodat(parent, n, m, AtFlags::empty())?;
        }
        if !xattrs.is_empty() {
            // A path through our own directory fd; the last component is never followed.
            let p = Path::new("/proc/self/fd")
                .join(parent.as_raw_fd().to_string())
                .join(n);
            for (k, v) in xattrs {
                rfs::lsetxattr(&p, osstr(k), v, XattrFlags::empty())?;
            }
        }
        rfs::utimensat(parent, n, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    fn whiteout(&mut self, show: &str, dir: &[u8], name: &[u8]) -> Result<(), UnpackError> {
        let ent = |source: io::Error| UnpackError::Entry {
            entry: show.into(),
            source,
        };
        let parent = self.parent(dir, show)?;
        if name == OPAQUE {
            match self.mode {
                Whiteouts::Overlay => {
                    let fd = rfs::openat(
                        &parent,
                        ".",
                        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| ent(e.into()))?;
                    rfs::fsetxattr(&fd, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                        .map_err(|e| ent(e.into()))?;
                }
                Whiteouts::Delete => {
                    let fd = rfs::openat(
                        &parent,
                        ".",
                        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| ent(e.into()))?;
                    for child in list_dir(&fd).map_err(ent)? {
                        let mut full = dir.to_vec();
                        if !full.is_empty() {
                            full.push(b'/');
                        }
                        full.extend_from_slice(&child);
                        if !self.created.contains(&full) {
                            remove_at(&parent, osstr(&child)).map_err(ent)?;
                        }
                    }
                }
            }
            return Ok(());
        }
        self.cached = None;
        let target = &name[WH.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(UnpackError::Escape {
                entry: show.into(),
                reason: "whiteout names no file",
            });
        }
        let t = osstr(target);
        match self.mode {
            Whiteouts::Overlay => {
                replace(&parent, t, |p, n| {
                    rfs::mknodat(
                        p,
                        n,
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rfs::makedev(0, 0),
                    )
                })
                .map_err(ent)?;
            }
            Whiteouts::Delete => remove_at(&parent, t).map_err(ent)?,
        }
        Ok(())
    }

    /// The directory an entry lives in, created if missing, resolved beneath the root.
    fn parent(&mut self, dir: &[u8], show: &str) -> Result<Rc<OwnedFd>, UnpackError> {
        if let Some((p, fd)) = &self.cached {
            if p == dir {
                return Ok(fd.clone());
            }
        }
        let fd = match self.open_dir(dir) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                self.mkdir_all(dir, show)?;
                self.open_dir(dir).map_err(|e| self.resolve_err(e, show))?
            }
            Err(e) => return Err(self.resolve_err(e, show)),
        };
        let fd = Rc::new(fd);
        self.cached = Some((dir.to_vec(), fd.clone()));
        Ok(fd)
    }

    fn resolve_err(&self, e: Errno, show: &str) -> UnpackError {
        match e {
            Errno::XDEV | Errno::LOOP => UnpackError::Escape {
                entry: show.into(),
                reason: "its directory is reached through a symlink that leaves the target",
            },
            Errno::NOTDIR => UnpackError::Escape {
                entry: show.into(),
                reason: "a parent is not a directory",
            },
            e => UnpackError::Entry {
                entry: show.into(),
                source: e.into(),
            },
        }
    }

    fn open_dir(&self, dir: &[u8]) -> Result<OwnedFd, Errno> {
        let p = if dir.is_empty() {
            osstr(b".")
        } else {
            osstr(dir)
        };
        rfs::openat2(
            &self.root,
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH,
        )
    }

    fn mkdir_all(&mut self, dir: &[u8], show: &str) -> Result<(), UnpackError> {
        let mut end = 0;
        while end < dir.len() {
            end = dir[end..]
                .iter()
                .position(|&b| b == b'/')
                .map(|i| end + i)
                .unwrap_or(dir.len());
            let (pd, name) = split(&dir[..end]);
            let pfd = self.open_dir(pd).map_err(|e| self.resolve_err(e, show))?;
            match rfs::mkdirat(&pfd, osstr(name), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(UnpackError::Entry {
                        entry: show.into(),
                        source: e.into(),
                    })
                }
            }
            end += 1;
        }
        Ok(())
    }

    /// Sets directory times; call once after the last entry.
    pub(crate) fn finish(&mut self) -> Result<(), UnpackError> {
        self.cached = None;
        // Directory times last, since creating their children changed them.
        for (p, mtime) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let show = String::from_utf8_lossy(&p).into_owned();
            if self.open_dir(&p).is_ok() {
                let (d, n) = split(&p);
                let pfd = self.open_dir(d).map_err(|e| self.resolve_err(e, &show))?;
                rfs::utimensat(&pfd, osstr(n), &ts(mtime), AtFlags::SYMLINK_NOFOLLOW).map_err(
                    |e| UnpackError::Entry {
                        entry: show,
                        source: e.into(),
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Extended attributes carried in the entry's PAX header.
fn xattrs<R: Read>(e: &mut tar::Entry<R>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions()? {
        for x in exts {
            let x = x?;
            if let Some(name) = x.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((name.to_vec(), x.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}
