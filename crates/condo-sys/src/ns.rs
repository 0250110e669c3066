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

/// Brings the loopback interface of the current network namespace up (`SIOCSIFFLAGS`).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain datagram socket, closed below.
    let s = check_int(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: ifreq is plain data; the name fits with its NUL; both ioctls get a valid pointer.
    let r = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        }
        r
    };
    let err = io::Error::last_os_error();
    // SAFETY: closing the socket made above.
    unsafe { libc::close(s) };
    if r == -1 {
        return Err(err);
    }
    Ok(())
}
