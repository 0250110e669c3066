//! Point-in-time copies of a writable snapshot that stays mounted and in use, for the backends
//! whose writable layer is a plain directory (overlay's upper, the copy backend's tree).
//!
//! An overlay's upper cannot be swapped under a mounted overlay, and processes may hold files
//! open in it, so a live snapshot must copy what the layer holds at that moment. With a quota
//! the layer has a filesystem of its own, frozen while its image is copied: one reflink on hosts
//! that have them (cost in the image's extents, not its data), a copy of the written ranges
//! elsewhere. Without one the tree is copied through the VFS (reflinked where possible); the
//! caller stops the writers meanwhile.

use super::quota;
use crate::fsutil::run;
use std::io;
use std::path::Path;
use std::process::Command;

/// Makes `dst/fs` a copy of `src/fs` as it is now, while `src` stays mounted.
pub fn copy(src: &Path, dst: &Path) -> io::Result<()> {
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
