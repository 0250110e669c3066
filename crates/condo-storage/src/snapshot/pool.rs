//! Size-limited filesystems for writable layers with a quota, on any host filesystem: a small
//! btrfs filesystem in a sparse image file (a *pool*), loop-mounted at `ROOT/pools/P`.
//!
//! The layer is a subvolume `P/ID` of the pool holding `fs` (and overlay's `work`: both in one
//! subvolume, because overlay renames from one to the other and btrfs refuses renames across
//! subvolumes), and `ROOT/snapshots/ID` is a relative symlink to it, so every path the
//! snapshotter hands out (`snapshots/ID/fs`) works unchanged. A snapshot of the layer while it
//! is mounted and in use is a read-only subvolume snapshot `P/NEW` in the same pool, O(1) in
//! what the layer wrote; its writers must be stopped meanwhile (a file appended to during the
//! snapshot can come out with its size ahead of its data). The pool goes with its last subvolume.
//!
//! Every step makes the symlink before what it points to, and removes it last, so a process
//! killed part way leaves at worst a symlink whose target is partly made, which
//! [`destroy`] finishes removing.

use super::btrfs::{is_subvolume, open_dir};
use crate::fsutil::{self, run};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Below this size data and metadata share block groups (`mkfs.btrfs --mixed`), as btrfs
/// advises for small filesystems: separate ones would hold back room the other kind needs.
const MIXED_BELOW: u64 = 1 << 30;
/// The smallest pool mkfs.btrfs makes.
const MIN_BYTES: u64 = 16 << 20;

/// Where one layer lives: its pool and its subvolume's name in it.
struct Member {
    /// The pool's mount point, `ROOT/pools/P`.
    mnt: PathBuf,
    /// The subvolume's name in the pool.
    name: OsString,
}

impl Member {
    fn image(&self) -> PathBuf {
        let mut s = self.mnt.as_os_str().to_owned();
        s.push(".img");
        PathBuf::from(s)
    }

    /// Where the image is copied before it takes its name, so that a copy cut short by a kill
    /// is never taken for a pool.
    fn partial(&self) -> PathBuf {
        let mut s = self.image().into_os_string();
        s.push(".part");
        PathBuf::from(s)
    }

    fn subvolume(&self) -> PathBuf {
        self.mnt.join(&self.name)
    }

    fn cname(&self) -> io::Result<CString> {
        CString::new(self.name.as_bytes()).map_err(io::Error::other)
    }
}

/// The store root of snapshot directory `dir` (`ROOT/snapshots/ID`).
fn store_root(dir: &Path) -> &Path {
    dir.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
}

/// The pool member `dir` links to, if it is one.
fn member(dir: &Path) -> Option<Member> {
    let target = std::fs::read_link(dir).ok()?;
    let parts: Vec<&OsStr> = target
        .components()
        .map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match parts[..] {
        [up, pools, pool, name] if up == ".." && pools == "pools" => Some(Member {
            mnt: store_root(dir).join("pools").join(pool),
            name: name.to_owned(),
        }),
        _ => None,
    }
}

/// Whether `dir` is a layer in a pool.
pub fn is_member(dir: &Path) -> bool {
    member(dir).is_some()
}

/// Makes `dir` a new layer in a new `bytes`-sized pool of its own, and mounts the pool.
pub fn create(dir: &Path, bytes: u64) -> io::Result<()> {
    let bytes = bytes.max(MIN_BYTES);
    let id = dir.file_name().ok_or_else(|| io::Error::other("no name"))?;
    let root = store_root(dir);
    std::fs::create_dir_all(root.join("pools"))?;
    let mut target = PathBuf::from("../pools");
    target.push(id);
    target.push(id);
    std::os::unix::fs::symlink(&target, dir)?;
    let made = (|| {
        let m = member(dir).ok_or_else(|| io::Error::other("pool link unreadable"))?;
        let tpl = blank(root, bytes)?;
        let part = m.partial();
        let _ = std::fs::remove_file(&part);
        if !fsutil::reflink(&tpl, &part)? {
            fsutil::copy_sparse(&tpl, &part)?;
        }
        std::fs::rename(&part, m.image())?;
        mount(&m)?;
        condo_sys::btrfs::subvolume_create(open_dir(&m.mnt)?, &m.cname()?)
    })();
    if made.is_err() {
        let _ = destroy(dir);
        let _ = std::fs::remove_file(dir);
    }
    made
}

/// The empty `bytes`-sized pool image at the store's root (`pool-BYTES.img`, kept), made if
/// missing: each pool is a copy of it (a reflink, or a copy of the few MiB mkfs wrote) instead
/// of an mkfs each. Copies share the filesystem's UUID, which the kernel allows for
/// single-device btrfs filesystems mounted side by side (each gets a temporary one).
fn blank(root: &Path, bytes: u64) -> io::Result<PathBuf> {
    let tpl = root.join(format!("pool-{bytes}.img"));
    if tpl.exists() {
        return Ok(tpl);
    }
    let tmp = root.join(fsutil::temp_name("pool"));
    let made = (|| {
        std::fs::File::create(&tmp)?.set_len(bytes)?;
        // One copy of metadata: a second on the same image file protects from nothing.
        let mut mkfs = Command::new("mkfs.btrfs");
        mkfs.args(["-q", "-f", "--nodiscard", "-m", "single", "-d", "single"]);
        if bytes < MIXED_BELOW {
            mkfs.arg("--mixed");
        }
        run(mkfs.arg(&tmp))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &tpl)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made.map(|()| tpl)
}

fn mount(m: &Member) -> io::Result<()> {
    std::fs::create_dir_all(&m.mnt)?;
    if super::quota::is_mountpoint(&m.mnt)? {
        return Ok(());
    }
    run(Command::new("mount")
        .args(["-t", "btrfs", "-o", "loop,nodev"])
        .arg(m.image())
        .arg(&m.mnt))
    .map(drop)
}

/// Mounts the pool of `dir` if it is a layer in one that is not mounted (after a reboot).
pub fn ensure(dir: &Path) -> io::Result<()> {
    match member(dir) {
        Some(m) if m.image().exists() => mount(&m),
        _ => Ok(()),
    }
}

/// Makes `dst` a read-only snapshot of layer `src` as it is now, in `src`'s pool, while `src`
/// stays mounted and in use. btrfs writes out the layer's dirty data first and takes the
/// snapshot in one transaction: it holds every write completed before, and no partial one.
pub fn snapshot(src: &Path, dst: &Path) -> io::Result<()> {
    let m = member(src).ok_or_else(|| io::Error::other("not in a pool"))?;
    mount(&m)?;
    let mut target = PathBuf::from("../pools");
    target.push(m.mnt.file_name().unwrap_or_default());
    target.push(dst.file_name().unwrap_or_default());
    std::os::unix::fs::symlink(&target, dst)?;
    let made = (|| {
        let d = member(dst).ok_or_else(|| io::Error::other("pool link unreadable"))?;
        condo_sys::btrfs::snapshot_create(
            open_dir(&m.subvolume())?,
            open_dir(&d.mnt)?,
            &d.cname()?,
            true,
        )
    })();
    if made.is_err() {
        let _ = destroy(dst);
        let _ = std::fs::remove_file(dst);
    }
    made
}

/// Removes what `dir` has in its pool (not the link itself), and the pool when nothing else is
/// left in it. Does nothing if `dir` is not a layer in a pool.
pub fn destroy(dir: &Path) -> io::Result<()> {
    let Some(m) = member(dir) else {
        return Ok(());
    };
    if !m.image().exists() {
        let _ = std::fs::remove_file(m.partial());
        let _ = std::fs::remove_dir(&m.mnt);
        return Ok(());
    }
    mount(&m)?;
    let sub = m.subvolume();
    if is_subvolume(&sub) {
        condo_sys::btrfs::subvolume_destroy(open_dir(&m.mnt)?, &m.cname()?)?;
    } else {
        fsutil::remove_all(&sub)?;
    }
    if std::fs::read_dir(&m.mnt)?.next().is_none() {
        super::unmount(&m.mnt)?;
        std::fs::remove_file(m.image())?;
        std::fs::remove_dir(&m.mnt)?;
    } else {
        // btrfs frees a deleted subvolume's blocks in the background, on its next periodic
        // commit (30 s) unless told: the room comes back to the instance now.
        run(Command::new("btrfs")
            .args(["filesystem", "sync"])
            .arg(&m.mnt))?;
    }
    Ok(())
}
