//! Scheduling attributes (`sched_setattr`, `sched_getattr`) and I/O priority (`ioprio_set`,
//! `ioprio_get`) of the calling thread.

use std::io;

use crate::check;

/// The kernel's `struct sched_attr` (version 1, with utilization clamps).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    /// Size of this structure, filled in by the wrappers.
    pub size: u32,
    /// `SCHED_*` policy.
    pub policy: u32,
    /// `SCHED_FLAG_*` flags.
    pub flags: u64,
    /// Nice value for `SCHED_OTHER` and `SCHED_BATCH`.
    pub nice: i32,
    /// Static priority for `SCHED_FIFO` and `SCHED_RR`.
    pub priority: u32,
    /// `SCHED_DEADLINE` runtime in nanoseconds.
    pub runtime: u64,
    /// `SCHED_DEADLINE` deadline in nanoseconds.
    pub deadline: u64,
    /// `SCHED_DEADLINE` period in nanoseconds.
    pub period: u64,
    /// Minimum utilization clamp.
    pub util_min: u32,
    /// Maximum utilization clamp.
    pub util_max: u32,
}

/// Sets the scheduling policy and attributes of the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> io::Result<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `a` is a complete `struct sched_attr` whose `size` field says how long it is.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &mut a as *mut SchedAttr, 0) })?;
    Ok(())
}

/// Reads the scheduling policy and attributes of the calling thread.
pub fn sched_getattr() -> io::Result<SchedAttr> {
    let mut a = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as libc::c_uint;
    // SAFETY: the kernel writes at most `size` bytes into `a`, which is that large.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut a as *mut SchedAttr,
            size,
            0,
        )
    })?;
    Ok(a)
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// Sets the I/O priority (`class << 13 | level`) of the calling thread.
pub fn ioprio_set(ioprio: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            ioprio as libc::c_int,
        )
    })?;
    Ok(())
}

/// Reads the I/O priority of the calling thread.
pub fn ioprio_get() -> io::Result<u32> {
    // SAFETY: plain syscall with integer arguments.
    let r = check(unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) })?;
    Ok(r as u32)
}
