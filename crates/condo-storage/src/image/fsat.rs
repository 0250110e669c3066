//! Directory-fd helpers for unpacking: replace, list and remove entries without ever
//! following a symlink.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

fn osstr(b: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b)
}

/// Creates `name` with `make`, first removing whatever is there (never following it).
pub(crate) fn replace(
    parent: &OwnedFd,
    name: &std::ffi::OsStr,
    make: impl Fn(&OwnedFd, &std::ffi::OsStr) -> Result<(), Errno>,
) -> io::Result<()> {
    match make(parent, name) {
        Err(Errno::EXIST) => {
            remove_at(parent, name)?;
            make(parent, name).map_err(Into::into)
        }
        r => r.map_err(Into::into),
    }
}

pub(crate) fn list_dir(fd: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let dup = rfs::openat(
        fd,
        ".",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = rfs::Dir::new(dup)?;
    for e in d.by_ref() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    Ok(out)
}

/// Removes a file or a whole directory tree below a directory fd, never following symlinks.
pub(crate) fn remove_at(parent: &impl AsFd, name: &std::ffi::OsStr) -> io::Result<()> {
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {
            let fd = rfs::openat(
                parent,
                name,
                OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            for child in list_dir(&fd)? {
                remove_at(&fd, osstr(&child))?;
            }
            rfs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}
