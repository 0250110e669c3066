//! The raw `seccomp(2)` system call: load a classic BPF filter, and answer user notifications.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::check;

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a notification fd for `SECCOMP_RET_USER_NOTIF`.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;

const SET_MODE_FILTER: libc::c_ulong = 1;
const IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Installs the classic BPF program `insns` as a seccomp filter of the calling thread.
///
/// With [`FLAG_NEW_LISTENER`] in `flags` the kernel returns the notification fd, given back
/// here as `Some`. The caller must hold `no_new_privs` or `CAP_SYS_ADMIN`.
pub fn set_mode_filter(flags: u32, insns: &[libc::sock_filter]) -> io::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `insns`, which stays alive and unchanged for the whole call;
    // the kernel copies the program before returning.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    })?;
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a fresh descriptor nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }))
    } else {
        Ok(None)
    }
}

/// One seccomp user notification (`struct seccomp_notif`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Notif {
    /// Cookie identifying the notification, echoed in the response.
    pub id: u64,
    /// Pid of the task that made the call, in the listener's pid namespace.
    pub pid: u32,
    /// Reserved.
    pub flags: u32,
    /// System call number.
    pub nr: i32,
    /// `AUDIT_ARCH_*` of the call.
    pub arch: u32,
    /// Instruction pointer at the call.
    pub instruction_pointer: u64,
    /// The six system call arguments.
    pub args: [u64; 6],
}

/// The answer to a notification (`struct seccomp_notif_resp`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NotifResp {
    /// The `id` of the notification answered.
    pub id: u64,
    /// Return value of the call when `error` is 0.
    pub val: i64,
    /// Negative errno to fail the call with, or 0.
    pub error: i32,
    /// `SECCOMP_USER_NOTIF_FLAG_CONTINUE` (1) to let the call run.
    pub flags: u32,
}

/// Waits for the next notification on the listener `fd` (`SECCOMP_IOCTL_NOTIF_RECV`).
pub fn notif_recv(fd: BorrowedFd<'_>) -> io::Result<Notif> {
    let mut n = Notif::default();
    loop {
        // SAFETY: `n` is a zeroed `struct seccomp_notif` of the size the ioctl number encodes.
        let ret =
            unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_NOTIF_RECV as _, &mut n as *mut Notif) };
        if ret == 0 {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Answers a notification on the listener `fd` (`SECCOMP_IOCTL_NOTIF_SEND`).
pub fn notif_send(fd: BorrowedFd<'_>, resp: &NotifResp) -> io::Result<()> {
    let mut r = *resp;
    // SAFETY: `r` is a `struct seccomp_notif_resp` of the size the ioctl number encodes.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            IOCTL_NOTIF_SEND as _,
            &mut r as *mut NotifResp,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
