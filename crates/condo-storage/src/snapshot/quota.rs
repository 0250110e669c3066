//! Size-limited backing filesystems for writable layers where the kernel has no project
//! quotas: a sparse image file, formatted ext4 and loop-mounted on the snapshot's directory.

use crate::fsutil::run;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

fn image(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(".img");
    PathBuf::from(s)
}

/// Whether `dir` has a quota image (and so must be mounted before use).
pub fn has_image(dir: &Path) -> bool {
    image(dir).exists()
}

/// Creates a `bytes`-sized filesystem image for `dir` and mounts it there. The image is a copy
/// of an empty one made once per size at the store's root (`quota-BYTES.img`, kept): a
/// reflink, or a copy of the few MiB of metadata mkfs wrote, instead of an mkfs per instance.
pub fn create(dir: &Path, bytes: u64) -> io::Result<()> {
    // ext4 metadata needs some room: smaller limits are rounded up to 8 MiB.
    let bytes = bytes.max(8 << 20);
    let tpl = blank(dir, bytes)?;
    let img = image(dir);
    let made = (|| {
        if !crate::fsutil::reflink(&tpl, &img)? {
            crate::fsutil::copy_sparse(&tpl, &img)?;
        }
        mount(dir)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&img);
    }
    made
}

/// The empty `bytes`-sized filesystem image at the root of `dir`'s store (`dir` is
/// `ROOT/snapshots/ID`), made if missing.
fn blank(dir: &Path, bytes: u64) -> io::Result<PathBuf> {
    let parent = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let tpl = parent.join(format!("quota-{bytes}.img"));
    if tpl.exists() {
        return Ok(tpl);
    }
    let tmp = parent.join(crate::fsutil::temp_name("quota"));
    let made = (|| {
        std::fs::File::create(&tmp)?.set_len(bytes)?;
        // A new sparse file already reads as zeros, so neither mkfs nor the kernel's lazy-init
        // thread needs to write the journal or the inode tables (64 MiB and more otherwise).
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-E"])
            .arg("nodiscard,root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1")
            .arg(&tmp))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &tpl)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made.map(|()| tpl)
}

/// Mounts the image on `dir` if it is not mounted yet.
pub fn mount(dir: &Path) -> io::Result<()> {
    if is_mountpoint(dir)? {
        return Ok(());
    }
    run(Command::new("mount")
        .args(["-o", "loop,nodev,noinit_itable"])
        .arg(image(dir))
        .arg(dir))?;
    // The empty filesystem's lost+found is not part of the snapshot.
    let _ = std::fs::remove_dir(dir.join("lost+found"));
    Ok(())
}

/// Unmounts and deletes the image, if `dir` has one (the loop device goes with the mount).
pub fn destroy(dir: &Path) -> io::Result<()> {
    if !has_image(dir) {
        return Ok(());
    }
    thaw_if_frozen(dir);
    if is_mountpoint(dir)? {
        super::unmount(dir)?;
    }
    std::fs::remove_file(image(dir))
}

/// The file that marks `dir`'s filesystem as frozen by us, so that a process killed while it
/// held the freeze does not leave the instance's writers blocked for good.
fn freeze_marker(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(".frozen");
    PathBuf::from(s)
}

/// Thaws `dir`'s filesystem if a copy was interrupted while it was frozen.
pub fn thaw_if_frozen(dir: &Path) {
    let m = freeze_marker(dir);
    if m.exists() {
        // "Not frozen" (EINVAL) is the expected answer after a reboot; it is thawed either way.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = condo_sys::fsfreeze::thaw(&d);
        }
        let _ = std::fs::remove_file(m);
    }
}

/// Copies the mounted image of `src` to a new image for `dst` (which must exist) and mounts
/// it there, all in this process so that a kill leaves no helper running on.
///
/// The filesystem is frozen during the copy (its writers wait), so the copy holds every write
/// completed before, cleanly: a bare reflink of a live image would be only crash-consistent,
/// and ext4 may show zeros at the end of files written since its last commit after a crash.
/// Where the host has reflinks the copy is one reflink, whose cost grows with the image's
/// extents, not its data; elsewhere the ranges holding data are copied. A sync before the
/// freeze does most of the flushing while the writers still run.
pub fn copy_image(src: &Path, dst: &Path) -> io::Result<()> {
    let root = std::fs::File::open(src)?;
    rustix::fs::syncfs(&root)?;
    let marker = freeze_marker(src);
    std::fs::File::create(&marker)?;
    if let Err(e) = condo_sys::fsfreeze::freeze(&root) {
        let _ = std::fs::remove_file(&marker);
        return Err(e);
    }
    let (from, to) = (image(src), image(dst));
    let copied = match crate::fsutil::reflink(&from, &to) {
        Ok(true) => Ok(()),
        Ok(false) => crate::fsutil::copy_sparse(&from, &to),
        Err(e) => Err(e),
    };
    let thawed = condo_sys::fsfreeze::thaw(&root);
    if thawed.is_ok() {
        let _ = std::fs::remove_file(&marker);
    }
    if let Err(e) = copied.and(thawed) {
        let _ = std::fs::remove_file(&to);
        return Err(e);
    }
    mount(dst)
}

/// Whether `dir` is the root of a mount.
pub fn is_mountpoint(dir: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let m = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => Err(e)?,
    };
    let p = std::fs::metadata(dir.join(".."))?;
    Ok(m.dev() != p.dev())
}
