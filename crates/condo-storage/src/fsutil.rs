//! Small filesystem helpers: durable atomic writes, tree removal and sizes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Flushes a directory's entries (after a rename or create inside it) to disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A name unique in this process, for temporary files beside their destination.
pub fn temp_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{prefix}-{}-{n}-{t:x}", std::process::id())
}

/// Writes `data` to `path` atomically: temp file, fsync, rename. Readers and a crash see the
/// old or the new content, never a mix; the directory is not flushed, so the newest rename may
/// be lost in a crash (callers' recovery treats that as the operation not having happened).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name("write"));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Writes a value as JSON atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
    write_atomic(path, &data)
}

/// Reads a JSON file; `Ok(None)` if it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(d) => serde_json::from_slice(&d).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file or a whole tree; a missing path is not an error.
pub fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Disk usage of a tree: bytes allocated (hard links counted once) and inode count.
pub fn disk_usage(path: &Path) -> io::Result<(u64, u64)> {
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p)?;
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        bytes += m.blocks() * 512;
        inodes += 1;
        if m.is_dir() {
            for e in fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
    }
    Ok((bytes, inodes))
}

/// Makes new file `dst` a reflink of `src` (sharing its extents: one atomic step whose cost
/// grows with the extents, not the data), durable on return; `Ok(false)`, and no `dst`, where
/// the filesystem has no reflinks.
pub fn reflink(src: &Path, dst: &Path) -> io::Result<bool> {
    use rustix::io::Errno;
    let s = File::open(src)?;
    let d = File::options().write(true).create_new(true).open(dst)?;
    let r = match rustix::fs::ioctl_ficlone(&d, &s) {
        Ok(()) => d.sync_all().map(|()| true),
        Err(Errno::OPNOTSUPP | Errno::XDEV | Errno::INVAL | Errno::NOTTY | Errno::PERM) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    };
    if !matches!(r, Ok(true)) {
        let _ = fs::remove_file(dst);
    }
    r
}

/// Copies file `src` to new file `dst`, only the ranges that hold data (holes stay holes), in
/// the kernel; durable on return.
pub fn copy_sparse(src: &Path, dst: &Path) -> io::Result<()> {
    use rustix::fs::SeekFrom;
    use rustix::io::Errno;
    let s = File::open(src)?;
    let d = File::options().write(true).create_new(true).open(dst)?;
    let len = s.metadata()?.len();
    d.set_len(len)?;
    let mut off = 0u64;
    while off < len {
        let start = match rustix::fs::seek(&s, SeekFrom::Data(off)) {
            Ok(p) => p,
            Err(Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = rustix::fs::seek(&s, SeekFrom::Hole(start))?.min(len);
        let (mut i, mut o) = (start, start);
        while i < end {
            let n = (end - i).min(1 << 30) as usize;
            if rustix::fs::copy_file_range(&s, Some(&mut i), &d, Some(&mut o), n)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while being copied", src.display()),
                ));
            }
        }
        off = end;
    }
    d.sync_all()
}

/// Runs a command, turning a non-zero exit into an error that carries its stderr.
pub fn run(cmd: &mut std::process::Command) -> io::Result<String> {
    if let Some(lock) = crate::snapshot::held_lock() {
        cmd.stdin(lock);
    }
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
