//! Filesystem freeze and thaw (FIFREEZE, FITHAW): writers block until the thaw, and the frozen
//! filesystem is clean on its device (a point-in-time image that mounts without recovery).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `_IOWR('X', 119, int)`.
const FIFREEZE: libc::c_ulong = 0xc004_5877;
/// `_IOWR('X', 120, int)`.
const FITHAW: libc::c_ulong = 0xc004_5878;

fn call(fd: impl AsFd, req: libc::c_ulong) -> io::Result<()> {
    // SAFETY: both requests ignore their argument; the fd is valid for the call.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), req, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Freezes the filesystem whose root directory `root` is open on (needs CAP_SYS_ADMIN).
pub fn freeze(root: impl AsFd) -> io::Result<()> {
    call(root, FIFREEZE)
}

/// Thaws a frozen filesystem; EINVAL if it was not frozen.
pub fn thaw(root: impl AsFd) -> io::Result<()> {
    call(root, FITHAW)
}
