//! The size-limited ext4 images that stores made by earlier versions hold under their layers
//! with a quota (`ID.img` beside the snapshot's directory, loop-mounted on it): still mounted,
//! copied while live (frozen) and removed. New layers with a quota live in btrfs pools
//! ([`super::pool`]).

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer on an ext4 image as earlier versions made it is still mounted, copied while
    /// mounted (frozen, then thawed: writes go on) and removed with its mount.
    #[test]
    fn ext4_layers_of_earlier_stores_still_work() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("1"), tmp.path().join("2"));
        std::fs::create_dir(&a).unwrap();
        std::fs::File::create(image(&a))
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image(&a))).unwrap();
        mount(&a).unwrap();
        assert!(is_mountpoint(&a).unwrap());
        std::fs::write(a.join("data"), b"kept").unwrap();
        std::fs::create_dir(&b).unwrap();
        copy_image(&a, &b).unwrap();
        std::fs::write(a.join("data"), b"changed").unwrap();
        assert_eq!(std::fs::read(b.join("data")).unwrap(), b"kept");
        assert!(!freeze_marker(&a).exists());
        for d in [&a, &b] {
            destroy(d).unwrap();
            assert!(!is_mountpoint(d).unwrap() && !has_image(d));
        }
    }
}
