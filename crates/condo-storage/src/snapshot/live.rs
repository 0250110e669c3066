//! The writable layers of the backends whose layer is a plain directory (overlay's upper, the
//! copy backend's tree): where a layer with a quota lives, and point-in-time copies of a layer
//! that stays mounted and in use.
//!
//! A layer with a quota is a subvolume in a small btrfs pool of its own ([`super::pool`]), so a
//! live snapshot is a read-only subvolume snapshot there: O(1) in what the layer wrote. Stores
//! made by earlier versions may hold layers on ext4 images ([`super::quota`]): those are still
//! mounted, removed and copied (frozen, then reflinked or copied range by range). Without a
//! quota an overlay's upper cannot be swapped under a mounted overlay, and processes may hold
//! files open in it, so its tree is copied through the VFS (reflinked where possible) while the
//! caller stops the writers.

use super::{pool, quota};
use crate::fsutil::run;
use std::io;
use std::path::Path;
use std::process::Command;

/// Makes `dir` a new layer directory, with a `bytes` quota if one is given.
pub fn create(dir: &Path, bytes: Option<u64>) -> io::Result<()> {
    match bytes {
        Some(b) => pool::create(dir, b),
        None => std::fs::create_dir(dir),
    }
}

/// Mounts the filesystem `dir`'s layer lives on, if it has one of its own and a reboot
/// unmounted it.
pub fn ensure(dir: &Path) -> io::Result<()> {
    pool::ensure(dir)?;
    if quota::has_image(dir) {
        quota::mount(dir)?;
    }
    Ok(())
}

/// Removes the layer `dir` and the filesystem of its own it may have.
pub fn destroy(dir: &Path) -> io::Result<()> {
    pool::destroy(dir)?;
    quota::destroy(dir)?;
    crate::fsutil::remove_all(dir)
}

/// Undoes a freeze a process killed during a copy of an ext4 layer left behind.
pub fn recover(dir: &Path) {
    quota::thaw_if_frozen(dir);
}

/// Whether [`copy`] of `dir` is a snapshot in its pool rather than a copy.
pub fn in_place(dir: &Path) -> bool {
    pool::is_member(dir)
}

/// Makes `dst` a copy of `src` (its `fs`) as it is now, while `src` stays mounted.
pub fn copy(src: &Path, dst: &Path) -> io::Result<()> {
    if pool::is_member(src) {
        return pool::snapshot(src, dst);
    }
    std::fs::create_dir(dst)?;
    if quota::has_image(src) {
        quota::mount(src)?;
        return quota::copy_image(src, dst);
    }
    run(Command::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(src.join("fs"))
        .arg(dst.join("fs")))
    .map(drop)
}
