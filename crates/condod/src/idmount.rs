//! Root filesystems seen through a container's id range, without copying or chowning a file.
//!
//! Files on disk keep the ids they have (root's files belong to 0); the container sees them
//! through idmapped mounts that shift 0–65535 on disk to its range on the host, so its root
//! (an unprivileged id outside) owns what root owns on disk, and what it writes lands on disk
//! unshifted. An instance is thus the same on disk whatever range runs it, and making one stays
//! O(1).
//!
//! Overlayfs itself cannot be idmapped, but its layers can: every lower layer and the upper
//! directory are cloned as detached idmapped mounts and handed to a new overlay by file
//! descriptor. Overlay does its own work (the work dir, copy-up, whiteouts) with the
//! credentials of whoever created it, so the creation runs on a thread of its own whose
//! filesystem ids are the range's root: an id the idmapped upper layer can write, stored as 0.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use condo_runtime::spec::IdMapping;
use condo_storage::snapshot::Mount;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};

use crate::idrange::{IdRange, SIZE};

/// The container's id maps (`linux.uidMappings` and `gidMappings` alike).
pub fn mappings(ids: IdRange) -> Vec<IdMapping> {
    vec![IdMapping {
        container_id: 0,
        host_id: ids.base,
        size: SIZE,
    }]
}

fn userns(ids: IdRange) -> Result<OwnedFd, String> {
    let m = mappings(ids);
    condo_runtime::idmap::userns_with(&m, &m).map_err(|e| e.to_string())
}

fn open_path(p: &Path) -> Result<OwnedFd, String> {
    rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("cannot open {}: {e}", p.display()))
}

/// A detached, idmapped clone of the tree at `dir`.
fn idmapped_clone(dir: &Path, ns: &OwnedFd) -> Result<OwnedFd, String> {
    let d = open_path(dir)?;
    let mnt = condo_sys::mount::open_tree(
        d.as_fd(),
        "",
        condo_sys::mount::OPEN_TREE_CLONE | condo_sys::mount::AT_RECURSIVE,
    )
    .map_err(|e| format!("cannot clone the mount of {}: {e}", dir.display()))?;
    condo_sys::mount::set_idmap(mnt.as_fd(), ns.as_fd(), true).map_err(|e| {
        format!(
            "the filesystem of {} cannot be idmapped ({e}); run the container with userns \"host\"",
            dir.display()
        )
    })?;
    Ok(mnt)
}

fn attach(mnt: &OwnedFd, target: &Path) -> Result<(), String> {
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| {
        format!(
            "cannot attach the root filesystem at {}: {e}",
            target.display()
        )
    })
}

/// Binds `dir` at `target` through the range `ids` (read-only if `ro`).
pub fn bind(dir: &Path, target: &Path, ids: IdRange, ro: bool) -> Result<(), String> {
    let ns = userns(ids)?;
    let mnt = idmapped_clone(dir, &ns)?;
    attach(&mnt, target)?;
    if ro {
        let flags = rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY;
        if let Err(e) = rustix::mount::mount_remount(target, flags, "") {
            let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH);
            return Err(format!("cannot make {} read-only: {e}", target.display()));
        }
    }
    Ok(())
}

/// Performs the snapshotter's `mounts` at `target`, seen through the range `ids`.
pub fn mount_all(mounts: &[Mount], target: &Path, ids: IdRange) -> Result<(), String> {
    let [m] = mounts else {
        return Err(format!(
            "{} mounts for one root filesystem: expected one",
            mounts.len()
        ));
    };
    match m.kind.as_str() {
        "bind" => bind(&m.source, target, ids, m.readonly()),
        "overlay" => overlay(&m.options, target, ids),
        k => Err(format!("cannot idmap a {k:?} mount")),
    }
}

/// What an overlay's options name.
#[derive(Debug, Default, PartialEq)]
struct OverlaySpec {
    lower: Vec<PathBuf>,
    upper: Option<PathBuf>,
    work: Option<PathBuf>,
    other: Vec<(String, Option<String>)>,
    ro: bool,
}

fn parse_overlay(options: &[String]) -> Result<OverlaySpec, String> {
    let mut s = OverlaySpec::default();
    for o in options {
        match o.split_once('=') {
            Some(("lowerdir", v)) => s.lower = v.split(':').map(PathBuf::from).collect(),
            Some(("upperdir", v)) => s.upper = Some(v.into()),
            Some(("workdir", v)) => s.work = Some(v.into()),
            Some((k, v)) => s.other.push((k.into(), Some(v.into()))),
            None if o == "ro" => s.ro = true,
            None if o == "rw" => {}
            None => s.other.push((o.clone(), None)),
        }
    }
    if s.lower.is_empty() || s.lower.iter().any(|l| !l.is_absolute()) {
        return Err("overlay: lowerdir must name absolute directories".into());
    }
    if s.upper.is_some() != s.work.is_some() {
        return Err("overlay: upperdir and workdir go together".into());
    }
    Ok(s)
}

fn overlay(options: &[String], target: &Path, ids: IdRange) -> Result<(), String> {
    let spec = parse_overlay(options)?;
    let ns = userns(ids)?;
    let lower: Vec<OwnedFd> = spec
        .lower
        .iter()
        .map(|l| idmapped_clone(l, &ns))
        .collect::<Result<_, _>>()?;
    // Upper and work must sit on one mount: clone their common parent, open both inside it.
    let upper = match (&spec.upper, &spec.work) {
        (Some(u), Some(w)) => {
            let parent = u
                .parent()
                .filter(|p| Some(*p) == w.parent())
                .ok_or("overlay: upperdir and workdir must share their parent directory")?;
            let base = idmapped_clone(parent, &ns)?;
            let open = |p: &Path| {
                let name = p.file_name().unwrap_or_default();
                rustix::fs::openat(
                    &base,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("cannot open {}: {e}", p.display()))
            };
            // The clone itself stays open until the overlay is made: closing it would
            // dissolve the detached tree under the two directories.
            Some((open(u)?, open(w)?, base))
        }
        _ => None,
    };
    let ro = spec.ro;
    let other = spec.other;
    // Overlay keeps its creator's credentials: create it on a thread whose fsuid and fsgid are
    // the range's root, with the capabilities that change cleared back in.
    let mnt = std::thread::scope(|s| {
        s.spawn(|| -> Result<OwnedFd, String> {
            let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
                .map_err(|e| format!("overlay: fsopen: {e}"))?;
            let key = |k: &str, e: rustix::io::Errno| format!("overlay: option {k}: {e}");
            for l in &lower {
                rustix::mount::fsconfig_set_fd(&fs, "lowerdir+", l)
                    .map_err(|e| key("lowerdir+", e))?;
            }
            if let Some((u, w, _)) = &upper {
                rustix::mount::fsconfig_set_fd(&fs, "upperdir", u)
                    .map_err(|e| key("upperdir", e))?;
                rustix::mount::fsconfig_set_fd(&fs, "workdir", w).map_err(|e| key("workdir", e))?;
            }
            for (k, v) in &other {
                match v {
                    Some(v) => rustix::mount::fsconfig_set_string(&fs, k.as_str(), v.as_str()),
                    None => rustix::mount::fsconfig_set_flag(&fs, k.as_str()),
                }
                .map_err(|e| key(k, e))?;
            }
            condo_sys::process::set_thread_fsids(ids.base, ids.base)
                .map_err(|e| format!("cannot take the range's ids: {e}"))?;
            let mut caps =
                rustix::thread::capabilities(None).map_err(|e| format!("capget: {e}"))?;
            caps.effective = caps.permitted;
            rustix::thread::set_capabilities(None, caps).map_err(|e| format!("capset: {e}"))?;
            rustix::mount::fsconfig_create(&fs).map_err(|e| format!("overlay: {e}"))?;
            let attrs = if ro {
                MountAttrFlags::MOUNT_ATTR_RDONLY
            } else {
                MountAttrFlags::empty()
            };
            rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
                .map_err(|e| format!("overlay: fsmount: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the overlay thread panicked".into()))
    })?;
    attach(&mnt, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_are_read_as_the_snapshotter_writes_them() {
        let o: Vec<String> = [
            "index=off",
            "lowerdir=/s/2/fs:/s/1/fs",
            "upperdir=/s/3/fs",
            "workdir=/s/3/work",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = parse_overlay(&o).unwrap();
        assert_eq!(s.lower, vec![PathBuf::from("/s/2/fs"), "/s/1/fs".into()]);
        assert_eq!(s.upper, Some("/s/3/fs".into()));
        assert_eq!(s.work, Some("/s/3/work".into()));
        assert_eq!(
            s.other,
            vec![("index".to_string(), Some("off".to_string()))]
        );
        assert!(!s.ro);
        let ro = parse_overlay(&["ro".into(), "lowerdir=/a:/b".into()]).unwrap();
        assert!(ro.ro && ro.upper.is_none());
        assert!(parse_overlay(&["lowerdir=rel".into()]).is_err());
        assert!(parse_overlay(&["lowerdir=/a".into(), "upperdir=/u".into()]).is_err());
    }
}
