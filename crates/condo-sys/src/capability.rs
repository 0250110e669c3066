//! Capability bounding and ambient sets by number (`prctl`), for capabilities newer than
//! the names other crates know.

use std::io;

use crate::check_int;

/// Whether capability `cap` is in the calling thread's bounding set (`PR_CAPBSET_READ`).
pub fn bounding_has(cap: u32) -> io::Result<bool> {
    // SAFETY: prctl with integer arguments.
    let r =
        check_int(unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) })?;
    Ok(r == 1)
}

/// Removes capability `cap` from the calling thread's bounding set (`PR_CAPBSET_DROP`).
pub fn bounding_drop(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Raises capability `cap` in the ambient set (`PR_CAP_AMBIENT_RAISE`).
pub fn ambient_raise(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    })?;
    Ok(())
}

/// Empties the ambient set (`PR_CAP_AMBIENT_CLEAR_ALL`).
pub fn ambient_clear_all() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    Ok(())
}
