//! Network namespace switching for the calling thread (unshare and setns with CLONE_NEWNET).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Moves the calling thread into a new, empty network namespace.
pub fn unshare_net() -> io::Result<()> {
    // SAFETY: unshare(CLONE_NEWNET) takes no pointers and only changes the namespace of the
    // calling thread; other threads and memory are unaffected.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves the calling thread into the network namespace that `fd` (an nsfs file) refers to.
pub fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed and therefore open for the duration of the call;
    // setns with CLONE_NEWNET only changes the calling thread's network namespace.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
