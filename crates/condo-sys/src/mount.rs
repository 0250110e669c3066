//! Mounts: the classic mount API, pivot_root, and the new API pieces for idmapped mounts.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::{check, check_int};

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Calls `mount(2)`; `None` arguments become NULL.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(c_path).transpose()?;
    let target = c_path(target)?;
    let fstype = fstype.map(crate::cstring).transpose()?;
    let data = data.map(crate::cstring).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
    check_int(unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags as libc::c_ulong,
            ptr(&data) as *const libc::c_void,
        )
    })?;
    Ok(())
}

/// Calls `umount2(2)`.
pub fn umount2(target: &Path, flags: i32) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: NUL-terminated path that outlives the call.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) })?;
    Ok(())
}

/// Calls `pivot_root(2)`.
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let n = c_path(new_root)?;
    let o = c_path(put_old)?;
    // SAFETY: NUL-terminated paths that outlive the call.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) })?;
    Ok(())
}

/// Calls `chroot(2)`.
pub fn chroot(path: &Path) -> io::Result<()> {
    let p = c_path(path)?;
    // SAFETY: NUL-terminated path that outlives the call.
    check_int(unsafe { libc::chroot(p.as_ptr()) })?;
    Ok(())
}

/// Creates a device node, fifo or socket (`mknodat` relative to `dir`).
pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
    // SAFETY: NUL-terminated name that outlives the call.
    check_int(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) })?;
    Ok(())
}

/// Builds a device number from major and minor.
pub fn makedev(major: u64, minor: u64) -> u64 {
    libc::makedev(major as u32, minor as u32)
}

/// `OPEN_TREE_CLONE`: detach a copy of the mount at the path.
pub const OPEN_TREE_CLONE: u32 = 1;
/// `AT_RECURSIVE` for open_tree and mount_setattr.
pub const AT_RECURSIVE: u32 = 0x8000;
const AT_EMPTY_PATH: u32 = 0x1000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Clones the mount tree at `path` (relative to `dir`, or `dir` itself when `path` is empty)
/// into a detached mount fd (`open_tree`).
pub fn open_tree(dir: BorrowedFd<'_>, path: &str, flags: u32) -> io::Result<OwnedFd> {
    let p = crate::cstring(path)?;
    let mut f = flags | libc::O_CLOEXEC as u32;
    if path.is_empty() {
        f |= AT_EMPTY_PATH;
    }
    // SAFETY: NUL-terminated path; the returned fd is new and ours.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), p.as_ptr(), f) })?;
    // SAFETY: new fd, ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached mount `from` onto the directory or file `to` (`move_mount`).
pub fn move_mount_to(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    let empty = c"";
    // SAFETY: empty NUL-terminated paths with the EMPTY_PATH flags address the fds themselves.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Turns the detached mount `mnt` into an idmapped mount using the mappings of the user
/// namespace `userns` (`mount_setattr` with `MOUNT_ATTR_IDMAP`).
pub fn set_idmap(mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid mount_attr of the size passed; the empty path addresses `mnt`.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// The mount flags (`ST_*` translated to `MS_*`) of the filesystem holding `path`, as needed
/// to remount a bind mount without clearing locked flags.
pub fn mount_flags_of(path: &Path) -> io::Result<u64> {
    let p = c_path(path)?;
    // SAFETY: statvfs is plain data filled in by the call.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        check_int(libc::statvfs(p.as_ptr(), &mut st))?;
        st
    };
    let f = st.f_flag;
    let mut out = 0u64;
    let pairs: [(u64, u64); 8] = [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_SYNCHRONOUS, libc::MS_SYNCHRONOUS),
    ];
    for (st_flag, ms_flag) in pairs {
        if f & st_flag != 0 {
            out |= ms_flag;
        }
    }
    Ok(out)
}
