//! Paths resolved inside a root directory, so a symlink in an image never reaches the host.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Resolution rules for every lookup under a container root.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens `path` (absolute or relative) as if `root` were `/`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    loop {
        match rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), IN_ROOT) {
            Ok(fd) => return Ok(fd),
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Opens a directory as the root for later lookups.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// What to create at the end of a path when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// A directory.
    Dir,
    /// An empty regular file.
    File,
}

/// Makes every missing directory of `path` under `root` (and the leaf itself), resolving
/// each step inside `root`; returns an `O_PATH` descriptor of the leaf.
pub fn make_in_root(root: BorrowedFd<'_>, path: &str, leaf: Leaf) -> io::Result<OwnedFd> {
    make_in_root_at_depth(root, path, leaf, 0)
}

/// Symlinks followed while making one path, as the kernel's MAXSYMLINKS.
const MAX_LINKS: usize = 40;

fn make_in_root_at_depth(
    root: BorrowedFd<'_>,
    path: &str,
    leaf: Leaf,
    links: usize,
) -> io::Result<OwnedFd> {
    match open_in_root(root, path, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut dir = open_in_root(root, "/", OFlags::PATH | OFlags::DIRECTORY)?;
    let mut walked = String::new();
    for (i, c) in comps.iter().enumerate() {
        if *c == ".." {
            walked.push_str("/..");
            dir = open_in_root(root, &walked, OFlags::PATH | OFlags::DIRECTORY)?;
            continue;
        }
        walked.push('/');
        walked.push_str(c);
        let last = i + 1 == comps.len();
        match open_in_root(root, &walked, OFlags::PATH) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // The name is missing: create it in the directory resolved so far.
        let parent_path = if i == 0 {
            "/"
        } else {
            walked.rsplit_once('/').map_or("/", |p| p.0)
        };
        let parent = open_in_root(root, parent_path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        // A dangling symlink also reads as missing (images have them, `/dev` or
        // `/etc/resolv.conf` made links): make its target instead, still inside the root.
        if let Ok(target) = rustix::fs::readlinkat(&parent, *c, Vec::new()) {
            if links >= MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = target.to_string_lossy().into_owned();
            let mut next = if target.starts_with('/') {
                target
            } else {
                format!("{parent_path}/{target}")
            };
            for rest in &comps[i + 1..] {
                next.push('/');
                next.push_str(rest);
            }
            return make_in_root_at_depth(root, &next, leaf, links + 1);
        }
        if last && leaf == Leaf::File {
            match rustix::fs::openat(
                &parent,
                *c,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(_) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            match rustix::fs::mkdirat(&parent, *c, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        dir = open_in_root(root, &walked, OFlags::PATH)?;
    }
    let _ = dir.as_fd();
    Ok(dir)
}

/// The `/proc/self/fd/N` path of a descriptor, usable as a mount source or target.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Whether `fd` refers to a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_symlinks_are_made_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = t.path().join("outside");
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../other/x", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        let rfd = open_root(&root).unwrap();
        make_in_root(rfd.as_fd(), "/abs/sub", Leaf::Dir).unwrap();
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
        assert!(!outside.exists());
        make_in_root(rfd.as_fd(), "/rel/f", Leaf::File).unwrap();
        assert!(root.join("other/x/f").is_file());
        let e = make_in_root(rfd.as_fd(), "/loop1/x", Leaf::Dir).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        // Inside the root "/etc" -> "/etc" would be a loop: aim at a host path it lacks.
        std::os::unix::fs::symlink("/usr/share", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../tmp", root.join("up")).unwrap();
        let rfd = open_root(&root).unwrap();
        // /etc/passwd through the absolute link must not reach the host's file.
        assert!(open_in_root(rfd.as_fd(), "/etc/passwd", OFlags::RDONLY).is_err());
        // Creating through the links lands inside the root.
        make_in_root(rfd.as_fd(), "/etc/x/y", Leaf::Dir).unwrap();
        assert!(root.join("etc").is_symlink());
        assert!(!Path::new("/etc/x/y").exists());
        let f = make_in_root(rfd.as_fd(), "/up/file", Leaf::File).unwrap();
        drop(f);
        assert!(!Path::new("/tmp/file").exists() || root.join("tmp").exists());
    }
}
