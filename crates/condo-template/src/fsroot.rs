//! Writing and reading files inside a root filesystem without ever leaving it: every path is
//! resolved as if the root were `/` (openat2 RESOLVE_IN_ROOT), so an image's symlinks cannot
//! point a write at the host.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

/// A user and group id.
pub type Owner = (u32, u32);

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn in_root(dir: &OwnedFd, path: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    Ok(rfs::openat2(
        dir,
        path,
        flags | OFlags::CLOEXEC,
        mode,
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Opens (creating with mode 0755, owned by root) every directory of absolute `dir` in `root`.
pub fn make_dirs(root: &Path, dir: &str) -> io::Result<OwnedFd> {
    let r = open_root(root)?;
    let mut cur = String::from("/");
    let mut fd = in_root(&r, "/", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())?;
    for c in Path::new(dir).components() {
        let Component::Normal(name) = c else { continue };
        let name = name.to_string_lossy();
        let next = format!("{}/{}", cur.trim_end_matches('/'), name);
        match in_root(&r, &next, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()) {
            Ok(f) => fd = f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match rfs::mkdirat(&fd, name.as_ref(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                fd = in_root(&r, &next, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())?;
            }
            Err(e) => return Err(e),
        }
        cur = next;
    }
    Ok(fd)
}

/// Writes `data` to absolute `dest` in `root` (replacing a file or symlink there) with `mode`
/// and `owner`, creating missing parent directories.
pub fn write_file(root: &Path, dest: &str, data: &[u8], mode: u32, owner: Owner) -> io::Result<()> {
    let p = Path::new(dest);
    let name = p
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let parent = p.parent().and_then(|d| d.to_str()).unwrap_or("/");
    let dir = make_dirs(root, parent)?;
    match rfs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rfs::openat(
        &dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)?;
    rfs::fchown(
        &f,
        Some(rfs::Uid::from_raw(owner.0)),
        Some(rfs::Gid::from_raw(owner.1)),
    )?;
    // After chown: changing the owner clears the set-id bits.
    rfs::fchmod(&f, Mode::from_raw_mode(mode))?;
    Ok(())
}

/// Creates a symlink `link` → `target` in `root` (replacing what is there).
pub fn symlink(root: &Path, link: &str, target: &str) -> io::Result<()> {
    let p = Path::new(link);
    let name = p
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let parent = p.parent().and_then(|d| d.to_str()).unwrap_or("/");
    let dir = make_dirs(root, parent)?;
    match rfs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(rfs::symlinkat(target, &dir, name)?)
}

/// Reads absolute `path` in `root`; None when it does not exist.
pub fn read_file(root: &Path, path: &str) -> io::Result<Option<Vec<u8>>> {
    let r = open_root(root)?;
    match in_root(&r, path, OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => {
            let mut v = Vec::new();
            std::fs::File::from(fd).read_to_end(&mut v)?;
            Ok(Some(v))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens directory `path` in `root`; None when nothing is there.
pub fn open_dir(root: &Path, path: &str) -> io::Result<Option<OwnedFd>> {
    let r = open_root(root)?;
    match in_root(&r, path, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether absolute `path` exists in `root`.
pub fn exists(root: &Path, path: &str) -> bool {
    open_root(root)
        .and_then(|r| in_root(&r, path, OFlags::PATH, Mode::empty()))
        .is_ok()
}

/// Resolves `user[:group]` (names from the root's /etc/passwd and /etc/group, or numbers).
pub fn owner(root: &Path, spec: &str) -> Result<Owner, String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str| -> Result<(u32, Option<u32>), String> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok((n, None));
        }
        let text = read_file(root, file)
            .map_err(|e| format!("{file}: {e}"))?
            .unwrap_or_default();
        for line in String::from_utf8_lossy(&text).lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                let id = f[2]
                    .parse()
                    .map_err(|_| format!("{file}: bad id for {name}"))?;
                return Ok((id, f[3].parse().ok()));
            }
        }
        Err(format!("no {name:?} in the image's {file}"))
    };
    let (uid, primary) = lookup("/etc/passwd", u)?;
    let gid = match g {
        Some(g) => lookup("/etc/group", g)?.0,
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/:/bin/sh\n",
        )
        .unwrap();
        // A symlink to a host path resolves inside the root; there it dangles, so the write fails.
        assert!(write_file(&root, "/escape/x", b"hi", 0o640, (0, 0)).is_err());
        assert!(!outside.join("x").exists());
        // Absolute symlinks of the image resolve inside the root, as /usr/bin for /bin.
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        write_file(&root, "/bin/tool", b"hi", 0o4755, (0, 0)).unwrap();
        let m = std::fs::metadata(root.join("usr/bin/tool")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
            0o4755
        );
        assert_eq!(owner(&root, "www").unwrap(), (33, 34));
        assert_eq!(owner(&root, "5:6").unwrap(), (5, 6));
        assert!(owner(&root, "nobody").unwrap_err().contains("nobody"));
        assert_eq!(
            read_file(&root, "/etc/../etc/passwd")
                .unwrap()
                .unwrap()
                .len(),
            49
        );
    }
}
