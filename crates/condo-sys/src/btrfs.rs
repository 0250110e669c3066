//! Btrfs subvolume ioctls: create, snapshot (optionally read-only) and destroy.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

const VOL_NAME_MAX: usize = 4087;
const SUBVOL_NAME_MAX: usize = 4039;
/// `_IOW(0x94, 14, struct btrfs_ioctl_vol_args)`.
const IOC_SUBVOL_CREATE: libc::c_ulong = 0x5000_940e;
/// `_IOW(0x94, 15, struct btrfs_ioctl_vol_args)`.
const IOC_SNAP_DESTROY: libc::c_ulong = 0x5000_940f;
/// `_IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)`.
const IOC_SNAP_CREATE_V2: libc::c_ulong = 0x5000_9417;
/// `_IOR(0x94, 25, u64)`.
const IOC_SUBVOL_GETFLAGS: libc::c_ulong = 0x8008_9419;
/// `_IOW(0x94, 26, u64)`.
const IOC_SUBVOL_SETFLAGS: libc::c_ulong = 0x4008_941a;
const SUBVOL_RDONLY: u64 = 1 << 1;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; VOL_NAME_MAX + 1],
}

#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

fn copy_name(dst: &mut [u8], name: &CStr) -> io::Result<()> {
    let b = name.to_bytes();
    if b.is_empty() || b.len() >= dst.len() || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad subvolume name",
        ));
    }
    dst[..b.len()].copy_from_slice(b);
    Ok(())
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Creates an empty subvolume `name` inside the directory `parent`.
pub fn subvolume_create(parent: impl AsFd, name: &CStr) -> io::Result<()> {
    let mut a = VolArgs {
        fd: 0,
        name: [0; VOL_NAME_MAX + 1],
    };
    copy_name(&mut a.name, name)?;
    // SAFETY: the fd is a live directory descriptor and `a` is a properly sized, initialized
    // btrfs_ioctl_vol_args that the kernel only reads.
    check(unsafe { libc::ioctl(parent.as_fd().as_raw_fd(), IOC_SUBVOL_CREATE, &a) })
}

/// Snapshots the subvolume open as `source` to `name` inside the directory `parent`.
pub fn snapshot_create(
    source: impl AsFd,
    parent: impl AsFd,
    name: &CStr,
    readonly: bool,
) -> io::Result<()> {
    let mut a = VolArgsV2 {
        fd: source.as_fd().as_raw_fd() as i64,
        transid: 0,
        flags: if readonly { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    };
    copy_name(&mut a.name, name)?;
    // SAFETY: both fds are live; `a` is a properly sized, initialized btrfs_ioctl_vol_args_v2
    // (4096 bytes, matching the ioctl number) that the kernel reads and may update in place.
    check(unsafe { libc::ioctl(parent.as_fd().as_raw_fd(), IOC_SNAP_CREATE_V2, &mut a) })
}

/// Deletes the subvolume `name` inside the directory `parent` (read-only ones too).
pub fn subvolume_destroy(parent: impl AsFd, name: &CStr) -> io::Result<()> {
    let mut a = VolArgs {
        fd: 0,
        name: [0; VOL_NAME_MAX + 1],
    };
    copy_name(&mut a.name, name)?;
    // SAFETY: the fd is a live directory descriptor and `a` is a properly sized, initialized
    // btrfs_ioctl_vol_args that the kernel only reads.
    check(unsafe { libc::ioctl(parent.as_fd().as_raw_fd(), IOC_SNAP_DESTROY, &a) })
}

/// Makes the subvolume open as `subvol` read-only (or writable again).
pub fn subvolume_set_readonly(subvol: impl AsFd, readonly: bool) -> io::Result<()> {
    let fd = subvol.as_fd().as_raw_fd();
    let mut flags: u64 = 0;
    // SAFETY: the fd is live and `flags` is a u64 the kernel writes, as the ioctl number says.
    check(unsafe { libc::ioctl(fd, IOC_SUBVOL_GETFLAGS, &mut flags) })?;
    flags = if readonly {
        flags | SUBVOL_RDONLY
    } else {
        flags & !SUBVOL_RDONLY
    };
    // SAFETY: the fd is live and `flags` is a u64 the kernel only reads.
    check(unsafe { libc::ioctl(fd, IOC_SUBVOL_SETFLAGS, &flags) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn argument_structs_match_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<super::VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<super::VolArgsV2>(), 4096);
    }
}
