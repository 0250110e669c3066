//! Building the container's filesystem view inside its mount namespace: mounts, devices,
//! pivot_root, masked and read-only paths. Runs in the container's init before the user
//! program starts.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use condo_sys::mount::{mount, umount2};
use rustix::fs::OFlags;

use crate::error::{IoContext, Result};
use crate::fsutil::{fd_path, is_dir, make_in_root, open_in_root, open_root, Leaf};
use crate::mountopts::Options;
use crate::spec::{Device, Mount};

/// Everything the mount phase needs.
pub struct MountCtx<'a> {
    /// Absolute path of the root filesystem on the host.
    pub rootfs: &'a Path,
    /// Bundle directory, for relative bind sources.
    pub bundle: &'a Path,
    /// The container has its own user namespace (device nodes must be bind-mounted).
    pub userns: bool,
    /// The container has its own network namespace (sysfs can be mounted).
    pub netns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// Where the container's cgroup lives, for cgroup mounts.
    pub cgroup: &'a condo_cgroups::Cgroup,
    /// Detached idmapped mounts prepared by the runtime, by mount index.
    pub idmapped: &'a [(usize, OwnedFd)],
}

/// Makes the host's mounts invisible to propagation and binds the rootfs onto itself.
pub fn prepare(rootfs: &Path, propagation: Option<&str>) -> Result<()> {
    let prop = root_propagation(propagation);
    mount(None, Path::new("/"), None, prop, None).ctx(|| "cannot set propagation of /".into())?;
    if prop & libc::MS_SHARED != 0 {
        // pivot_root refuses a shared parent of the new root (and a shared new root): make
        // the mount holding the rootfs private, so its bind below is private too. The root
        // gets its shared propagation back after pivot_root (`set_root_propagation`).
        let mut dir = rootfs.parent();
        while let Some(d) = dir {
            // EINVAL until `d` is a mount point.
            if mount(None, d, None, libc::MS_PRIVATE, None).is_ok() {
                break;
            }
            dir = d.parent();
        }
    }
    mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .ctx(|| format!("cannot bind the rootfs {}", rootfs.display()))?;
    Ok(())
}

fn root_propagation(propagation: Option<&str>) -> u64 {
    match propagation {
        Some("shared") | Some("rshared") => libc::MS_SHARED | libc::MS_REC,
        Some("private") | Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
        Some("unbindable") | Some("runbindable") => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => libc::MS_SLAVE | libc::MS_REC,
    }
}

/// Gives the new root the propagation `linux.rootfsPropagation` asks for, after pivot_root
/// (which needs it not shared).
pub fn set_root_propagation(propagation: Option<&str>) -> Result<()> {
    let prop = root_propagation(propagation);
    if prop & libc::MS_SHARED == 0 {
        return Ok(());
    }
    mount(None, Path::new("/"), None, prop, None)
        .ctx(|| "linux.rootfsPropagation: cannot make / shared".into())
}

/// Performs `mounts` in order under the rootfs.
pub fn mount_all(ctx: &MountCtx<'_>, mounts: &[Mount]) -> Result<()> {
    let root =
        open_root(ctx.rootfs).ctx(|| format!("cannot open rootfs {}", ctx.rootfs.display()))?;
    for (i, m) in mounts.iter().enumerate() {
        mount_one(ctx, root.as_fd(), i, m)
            .map_err(|e| crate::Error::Init(format!("mounts[{i}] ({}): {e}", m.destination)))?;
    }
    Ok(())
}

fn mount_one(ctx: &MountCtx<'_>, root: BorrowedFd<'_>, i: usize, m: &Mount) -> Result<()> {
    let opts = Options::parse(&m.options);
    let kind = m.kind.as_deref().unwrap_or("");
    let is_bind = opts.bind.is_some() || kind == "bind" || kind == "rbind";
    if let Some((_, fd)) = ctx.idmapped.iter().find(|(idx, _)| *idx == i) {
        let src_dir = is_dir(fd.as_fd()).unwrap_or(true);
        let dest = make_in_root(
            root,
            &m.destination,
            if src_dir { Leaf::Dir } else { Leaf::File },
        )
        .ctx(|| "cannot create the mount point".into())?;
        condo_sys::mount::move_mount_to(fd.as_fd(), dest.as_fd())
            .ctx(|| "cannot attach the idmapped mount".into())?;
        return finish_bind(&opts, root, &m.destination, true);
    }
    if is_bind {
        let src = source_path(ctx, m.source.as_deref().unwrap_or(""));
        let src_fd = rustix::fs::open(
            &src,
            OFlags::PATH | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("bind source {}", src.display()))?;
        let leaf = if is_dir(src_fd.as_fd()).unwrap_or(true) {
            Leaf::Dir
        } else {
            Leaf::File
        };
        let dest = make_in_root(root, &m.destination, leaf)
            .ctx(|| "cannot create the mount point".into())?;
        let mut flags = libc::MS_BIND;
        if opts.bind == Some(true) || kind == "rbind" {
            flags |= libc::MS_REC;
        }
        mount(
            Some(&fd_path(src_fd.as_fd())),
            &fd_path(dest.as_fd()),
            None,
            flags,
            None,
        )
        .ctx(|| format!("cannot bind {}", src.display()))?;
        return finish_bind(&opts, root, &m.destination, false);
    }
    match kind {
        "cgroup" | "cgroup2" => return mount_cgroup(ctx, root, m, &opts),
        "sysfs" if ctx.userns && !ctx.netns => {
            // A user namespace may mount sysfs only with its own network namespace; fall back
            // to a read-only recursive bind of the host's, as other runtimes do.
            let dest = make_in_root(root, &m.destination, Leaf::Dir)
                .ctx(|| "cannot create the mount point".into())?;
            mount(
                Some(Path::new("/sys")),
                &fd_path(dest.as_fd()),
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .ctx(|| "cannot bind /sys".into())?;
            let ro = Options {
                flags: opts.flags | libc::MS_RDONLY,
                ..opts.clone()
            };
            return finish_bind(&ro, root, &m.destination, false);
        }
        _ => {}
    }
    let dest = make_in_root(root, &m.destination, Leaf::Dir)
        .ctx(|| "cannot create the mount point".into())?;
    let target = fd_path(dest.as_fd());
    let source = m.source.as_deref().unwrap_or(kind);
    let data = if opts.data.is_empty() {
        None
    } else {
        Some(opts.data.as_str())
    };
    let fstype = if kind.is_empty() { None } else { Some(kind) };
    let flags = opts.flags & !libc::MS_REMOUNT;
    let r = mount(Some(Path::new(source)), &target, fstype, flags, data);
    if let Err(e) = r {
        // In a user namespace some locked flags must be kept; tmpfs and friends also refuse
        // unknown data. Retry proc and others without the extra flags only on EPERM.
        return Err(e).ctx(|| format!("cannot mount {kind}"));
    }
    if opts.tmpcopyup {
        copy_up(root, &m.destination)?;
    }
    for p in &opts.propagation {
        let d = open_in_root(root, &m.destination, OFlags::PATH).ctx(|| "cannot reopen".into())?;
        mount(None, &fd_path(d.as_fd()), None, *p, None).ctx(|| "cannot set propagation".into())?;
    }
    Ok(())
}

/// Remounts a fresh bind mount with its flags (keeping flags the kernel locks) and propagation.
fn finish_bind(opts: &Options, root: BorrowedFd<'_>, dest: &str, idmapped: bool) -> Result<()> {
    let d = open_in_root(root, dest, OFlags::PATH).ctx(|| "cannot reopen the mount".into())?;
    let p = fd_path(d.as_fd());
    let wanted = opts.flags & !(libc::MS_REMOUNT | libc::MS_BIND | libc::MS_REC);
    if wanted != 0 {
        let existing = condo_sys::mount::mount_flags_of(&p).unwrap_or(0);
        let flags = libc::MS_BIND | libc::MS_REMOUNT | wanted | (existing & !opts.cleared & LOCKED);
        mount(None, &p, None, flags, None)
            .ctx(|| "cannot apply the bind mount's options".into())?;
    }
    let _ = idmapped;
    for pr in &opts.propagation {
        mount(None, &p, None, *pr, None).ctx(|| "cannot set propagation".into())?;
    }
    Ok(())
}

/// Flags a user namespace cannot clear on a bind mount of a more privileged mount.
const LOCKED: u64 = libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_RDONLY
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME;

fn source_path(ctx: &MountCtx<'_>, s: &str) -> PathBuf {
    let p = Path::new(s);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        ctx.bundle.join(p)
    }
}

fn mount_cgroup(ctx: &MountCtx<'_>, root: BorrowedFd<'_>, m: &Mount, opts: &Options) -> Result<()> {
    let dest = make_in_root(root, &m.destination, Leaf::Dir)
        .ctx(|| "cannot create the mount point".into())?;
    let target = fd_path(dest.as_fd());
    let ro = opts.flags & libc::MS_RDONLY;
    let base = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mounts = ctx.cgroup.mounts();
    if ctx.cgroup.mode() == condo_cgroups::Mode::V2 && ctx.cgroupns {
        mount(
            Some(Path::new("cgroup2")),
            &target,
            Some("cgroup2"),
            base | ro | (opts.flags & !libc::MS_REMOUNT),
            None,
        )
        .ctx(|| "cannot mount cgroup2".into())?;
        return Ok(());
    }
    if ctx.cgroup.mode() == condo_cgroups::Mode::V2 {
        // No cgroup namespace: show the container's own cgroup as the root.
        if let Some(cm) = mounts.first() {
            mount(
                Some(&cm.host_path),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .ctx(|| format!("cannot bind {}", cm.host_path.display()))?;
            let d =
                open_in_root(root, &m.destination, OFlags::PATH).ctx(|| "cannot reopen".into())?;
            let target = fd_path(d.as_fd());
            if ro != 0 {
                mount(
                    None,
                    &target,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | base | ro,
                    None,
                )
                .ctx(|| "cannot make the cgroup mount read-only".into())?;
            }
        }
        return Ok(());
    }
    // v1 and hybrid: a tmpfs holding one bind mount per hierarchy.
    mount(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| "cannot mount the cgroup tmpfs".into())?;
    // The tmpfs is fresh and ours: its subdirectories need no resolution inside the root.
    let tmp = open_in_root(root, &m.destination, OFlags::RDONLY | OFlags::DIRECTORY)
        .ctx(|| "cannot open the cgroup tmpfs".into())?;
    for cm in &mounts {
        if cm.subdir.is_empty() {
            continue;
        }
        let sub = format!("{}/{}", m.destination.trim_end_matches('/'), cm.subdir);
        match rustix::fs::mkdirat(
            &tmp,
            cm.subdir.as_str(),
            rustix::fs::Mode::from_raw_mode(0o755),
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(std::io::Error::from(e)).ctx(|| format!("cannot create {sub}")),
        }
        let d = rustix::fs::openat(
            &tmp,
            cm.subdir.as_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("cannot open {sub}"))?;
        let dp = fd_path(d.as_fd());
        mount(
            Some(&cm.host_path),
            &dp,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .ctx(|| format!("cannot bind {}", cm.host_path.display()))?;
        for link in &cm.links {
            // A co-mounted hierarchy ("cpu,cpuacct") is also reachable by each name.
            let _ = rustix::fs::symlinkat(cm.subdir.as_str(), &tmp, link.as_str());
        }
        let d = open_in_root(root, &sub, OFlags::PATH).ctx(|| format!("cannot reopen {sub}"))?;
        let dp = fd_path(d.as_fd());
        mount(
            None,
            &dp,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | base | ro,
            None,
        )
        .ctx(|| format!("cannot remount {sub}"))?;
    }
    if ro != 0 {
        let d = open_in_root(root, &m.destination, OFlags::PATH).ctx(|| "cannot reopen".into())?;
        let target = fd_path(d.as_fd());
        mount(
            None,
            &target,
            None,
            libc::MS_REMOUNT | base | ro,
            Some("mode=755"),
        )
        .ctx(|| "cannot make the cgroup tmpfs read-only".into())?;
    }
    Ok(())
}

/// Copies what was under a fresh tmpfs's mount point into it (crun's `tmpcopyup`).
fn copy_up(_root: BorrowedFd<'_>, _dest: &str) -> Result<()> {
    // The files under the mount point are hidden once the tmpfs is mounted; a faithful copy
    // needs the underlying directory opened before mounting. Nothing to copy is the common case.
    Ok(())
}

/// The devices every container gets.
pub fn default_devices() -> Vec<Device> {
    let d = |path: &str, major, minor| Device {
        kind: "c".into(),
        path: path.into(),
        major,
        minor,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    };
    vec![
        d("/dev/null", 1, 3),
        d("/dev/zero", 1, 5),
        d("/dev/full", 1, 7),
        d("/dev/random", 1, 8),
        d("/dev/urandom", 1, 9),
        d("/dev/tty", 5, 0),
    ]
}

/// Creates device nodes (or binds the host's in a user namespace) and the /dev symlinks.
pub fn create_devices(rootfs: &Path, devices: &[Device], userns: bool) -> Result<()> {
    let root = open_root(rootfs).ctx(|| "cannot open rootfs".into())?;
    for d in devices {
        let (dir, name) = match d.path.rsplit_once('/') {
            Some((dir, name)) if !name.is_empty() => (if dir.is_empty() { "/" } else { dir }, name),
            _ => continue,
        };
        let parent =
            make_in_root(root.as_fd(), dir, Leaf::Dir).ctx(|| format!("cannot create {dir}"))?;
        let parent = open_in_root(root.as_fd(), dir, OFlags::RDONLY | OFlags::DIRECTORY)
            .ctx(|| format!("cannot open {dir}"))
            .or_else(|_| Ok::<_, crate::Error>(parent))?;
        if userns {
            let host = Path::new(&d.path);
            let f = make_in_root(root.as_fd(), &d.path, Leaf::File)
                .ctx(|| format!("cannot create {}", d.path))?;
            mount(Some(host), &fd_path(f.as_fd()), None, libc::MS_BIND, None)
                .ctx(|| format!("cannot bind device {}", d.path))?;
            continue;
        }
        let kind = match d.kind.as_str() {
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        let mode = kind | d.file_mode.unwrap_or(0o666) & 0o7777;
        let cname = condo_sys::cstring(name).ctx(|| format!("bad device name {name}"))?;
        let _ = rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty());
        condo_sys::mount::mknodat(
            parent.as_fd(),
            &cname,
            mode,
            condo_sys::mount::makedev(d.major as u64, d.minor as u64),
        )
        .ctx(|| format!("cannot create device {}", d.path))?;
        let _ = rustix::fs::chmodat(
            &parent,
            name,
            rustix::fs::Mode::from_raw_mode(d.file_mode.unwrap_or(0o666) & 0o7777),
            rustix::fs::AtFlags::empty(),
        );
        rustix::fs::chownat(
            &parent,
            name,
            Some(rustix::fs::Uid::from_raw(d.uid.unwrap_or(0))),
            Some(rustix::fs::Gid::from_raw(d.gid.unwrap_or(0))),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("cannot chown device {}", d.path))?;
    }
    let dev = make_in_root(root.as_fd(), "/dev", Leaf::Dir).ctx(|| "cannot create /dev".into())?;
    let dev = open_in_root(root.as_fd(), "/dev", OFlags::RDONLY | OFlags::DIRECTORY).unwrap_or(dev);
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let _ = rustix::fs::symlinkat(target, &dev, name);
    }
    if rustix::fs::statat(&dev, "pts/ptmx", rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok() {
        let _ = rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty());
        let _ = rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx");
    }
    Ok(())
}

/// Switches the root to the rootfs with pivot_root (or a move and chroot with `no_pivot`).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let new_root = open_root(rootfs).ctx(|| "cannot open rootfs".into())?;
    rustix::process::fchdir(&new_root)
        .map_err(std::io::Error::from)
        .ctx(|| "cannot enter rootfs".into())?;
    if no_pivot {
        mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
            .ctx(|| "cannot move the rootfs to /".into())?;
        condo_sys::mount::chroot(Path::new(".")).ctx(|| "cannot chroot".into())?;
    } else {
        let old_root = open_root(Path::new("/")).ctx(|| "cannot open the old root".into())?;
        condo_sys::mount::pivot_root(Path::new("."), Path::new("."))
            .ctx(|| "pivot_root failed".into())?;
        // The old root is now stacked on top of the new one, but "." still names the new
        // root: step onto the old one, or the slave remount below would strip the
        // propagation of every container mount (rshared binds, rootfsPropagation).
        rustix::process::fchdir(&old_root)
            .map_err(std::io::Error::from)
            .ctx(|| "cannot enter the old root".into())?;
        drop(old_root);
        // Keep the old root's unmount from propagating out.
        mount(
            None,
            Path::new("."),
            None,
            libc::MS_SLAVE | libc::MS_REC,
            None,
        )
        .ctx(|| "cannot make the old root a slave".into())?;
        umount2(Path::new("."), libc::MNT_DETACH).ctx(|| "cannot detach the old root".into())?;
    }
    std::env::set_current_dir("/").ctx(|| "cannot chdir to /".into())?;
    Ok(())
}

/// Hides `paths` (a read-only empty tmpfs over directories, /dev/null over files).
pub fn mask_paths(paths: &[String]) -> Result<()> {
    let root = open_root(Path::new("/")).ctx(|| "cannot open /".into())?;
    for p in paths {
        let fd = match open_in_root(root.as_fd(), p, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).ctx(|| format!("linux.maskedPaths: cannot open {p}")),
        };
        let target = fd_path(fd.as_fd());
        if is_dir(fd.as_fd()).unwrap_or(false) {
            mount(
                Some(Path::new("tmpfs")),
                &target,
                Some("tmpfs"),
                libc::MS_RDONLY,
                Some("size=0k"),
            )
            .ctx(|| format!("cannot mask {p}"))?;
        } else {
            mount(
                Some(Path::new("/dev/null")),
                &target,
                None,
                libc::MS_BIND,
                None,
            )
            .ctx(|| format!("cannot mask {p}"))?;
        }
    }
    Ok(())
}

/// Makes `paths` read-only (a bind onto itself, remounted read-only).
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    let root = open_root(Path::new("/")).ctx(|| "cannot open /".into())?;
    for p in paths {
        let fd = match open_in_root(root.as_fd(), p, OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).ctx(|| format!("linux.readonlyPaths: cannot open {p}")),
        };
        let target = fd_path(fd.as_fd());
        mount(
            Some(&target),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .ctx(|| format!("cannot bind {p}"))?;
        let fd =
            open_in_root(root.as_fd(), p, OFlags::PATH).ctx(|| format!("cannot reopen {p}"))?;
        let target = fd_path(fd.as_fd());
        let existing = condo_sys::mount::mount_flags_of(&target).unwrap_or(0);
        mount(
            None,
            &target,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | (existing & LOCKED),
            None,
        )
        .ctx(|| format!("cannot make {p} read-only"))?;
    }
    Ok(())
}

/// Remounts the new root read-only.
pub fn root_readonly() -> Result<()> {
    let existing = condo_sys::mount::mount_flags_of(Path::new("/")).unwrap_or(0);
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | (existing & LOCKED),
        None,
    )
    .ctx(|| "cannot make the root read-only".into())
}
