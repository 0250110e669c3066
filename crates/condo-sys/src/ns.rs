//! Namespaces: setns, unshare, hostnames.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::check_int;

/// Joins the namespace behind `fd` (`setns`); `nstype` 0 accepts any kind, and a pidfd with
/// several `CLONE_NEW*` flags joins them all at once.
pub fn setns(fd: BorrowedFd<'_>, nstype: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a caller-owned fd.
    check_int(unsafe { libc::setns(fd.as_raw_fd(), nstype) })?;
    Ok(())
}

/// Moves the calling process into new namespaces (`unshare`).
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check_int(unsafe { libc::unshare(flags) })?;
    Ok(())
}

/// Sets the UTS namespace's host name.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`'s bytes.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

/// Sets the UTS namespace's NIS domain name.
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`'s bytes.
    check_int(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

/// Sets the execution domain (`personality`), returning the previous one.
pub fn personality(persona: u64) -> io::Result<i32> {
    // SAFETY: plain syscall with an integer argument.
    check_int(unsafe { libc::personality(persona as libc::c_ulong) })
}
