//! One conformance suite run against every snapshotter backend.

mod common;

use common::*;
use condo_storage::snapshot::{
    BtrfsSnapshotter, CopySnapshotter, Kind, OverlaySnapshotter, PrepareOptions, SnapshotError,
    Snapshotter,
};
use std::fs;
use std::path::Path;

/// The behaviour every backend shares; `quota` is given to every writable snapshot, and
/// `in_place` says whether a live snapshot is then made in place rather than copied.
fn conformance(s: &dyn Snapshotter, work: &Path, quota: Option<u64>, in_place: bool) {
    let name = s.backend();
    let opts = PrepareOptions {
        quota,
        ..Default::default()
    };
    let mnt = work.join("mnt");

    // A base layer written through an active snapshot, then committed.
    let m = s.prepare("a", None, &opts).unwrap();
    {
        let _g = MountGuard::new(&m, &mnt);
        fs::write(mnt.join("keep"), b"base").unwrap();
        fs::write(mnt.join("gone"), b"base").unwrap();
        fs::create_dir(mnt.join("d")).unwrap();
        fs::write(mnt.join("d/f"), b"base").unwrap();
    }
    s.commit("base", "a").unwrap();
    assert_eq!(s.stat("base").unwrap().kind, Kind::Committed, "{name}");
    assert!(
        matches!(s.stat("a"), Err(SnapshotError::NotFound(_))),
        "{name}"
    );

    // A child that changes, deletes and adds.
    let m = s.prepare("b", Some("base"), &opts).unwrap();
    assert_eq!(s.mounts("b").unwrap(), m, "{name}");
    {
        let _g = MountGuard::new(&m, &mnt);
        assert_eq!(fs::read(mnt.join("keep")).unwrap(), b"base", "{name}");
        fs::write(mnt.join("keep"), b"child").unwrap();
        fs::remove_file(mnt.join("gone")).unwrap();
        fs::remove_dir_all(mnt.join("d")).unwrap();
        fs::write(mnt.join("new"), vec![7u8; 100_000]).unwrap();
    }
    // A live snapshot holds the active one's tree; the active one stays as it is.
    assert_eq!(s.snapshots_in_place("b").unwrap(), in_place, "{name}");
    s.snapshot_live("bl", "b").unwrap();
    assert_eq!(s.stat("bl").unwrap().kind, Kind::Committed, "{name}");
    assert_eq!(s.stat("b").unwrap().kind, Kind::Active, "{name}");
    let m = s.view("vl", Some("bl")).unwrap();
    {
        let _g = MountGuard::new(&m, &mnt);
        assert_eq!(names(&mnt), vec!["keep", "new"], "{name}");
        assert_eq!(fs::read(mnt.join("keep")).unwrap(), b"child", "{name}");
    }
    s.remove("vl").unwrap();
    s.remove("bl").unwrap();
    s.commit("child", "b").unwrap();
    assert_eq!(
        s.stat("child").unwrap().parent.as_deref(),
        Some("base"),
        "{name}"
    );

    // A read-only view of the child sees exactly the child's tree.
    let m = s.view("v", Some("child")).unwrap();
    {
        let _g = MountGuard::new(&m, &mnt);
        assert_eq!(names(&mnt), vec!["keep", "new"], "{name}");
        assert_eq!(fs::read(mnt.join("keep")).unwrap(), b"child", "{name}");
        let e = fs::write(mnt.join("x"), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{name}");
    }
    // The base is untouched by its child.
    let m = s.view("vb", Some("base")).unwrap();
    {
        let _g = MountGuard::new(&m, &mnt);
        assert_eq!(names(&mnt), vec!["d", "gone", "keep"], "{name}");
    }

    assert!(s.usage("child").unwrap().size >= 100_000, "{name}");
    let mut all: Vec<String> = s.walk().unwrap().into_iter().map(|i| i.name).collect();
    all.sort();
    assert_eq!(all, vec!["base", "child", "v", "vb"], "{name}");

    // Errors.
    assert!(
        matches!(s.prepare("v", None, &opts), Err(SnapshotError::Exists(_))),
        "{name}"
    );
    assert!(
        matches!(
            s.prepare("x", Some("v"), &opts),
            Err(SnapshotError::WrongKind { .. })
        ),
        "{name}"
    );
    assert!(
        matches!(
            s.prepare("x", Some("nope"), &opts),
            Err(SnapshotError::NotFound(_))
        ),
        "{name}"
    );
    assert!(
        matches!(s.commit("c", "child"), Err(SnapshotError::WrongKind { .. })),
        "{name}"
    );
    assert!(
        matches!(s.remove("base"), Err(SnapshotError::HasChildren(_))),
        "{name}"
    );
    assert!(
        matches!(s.mounts("base"), Err(SnapshotError::WrongKind { .. })),
        "{name}"
    );

    // Removal in any order children allow leaves nothing behind.
    for k in ["v", "vb", "child", "base"] {
        s.remove(k).unwrap();
    }
    assert!(s.walk().unwrap().is_empty(), "{name}");
}

fn snapshot_dirs(root: &Path) -> Vec<String> {
    names(&root.join("snapshots"))
}

/// Runs the suite on an overlay or copy store in a scratch dir, with and without quotas.
fn conforms_with_and_without_quota(open: impl Fn(&Path) -> Box<dyn Snapshotter>) {
    if !root() {
        return;
    }
    for quota in [None, Some(64 << 20)] {
        let tmp = Scratch::new();
        let s = open(&tmp.path().join("store"));
        conformance(s.as_ref(), tmp.path(), quota, quota.is_some());
        assert!(snapshot_dirs(&tmp.path().join("store")).is_empty());
        assert!(names(&tmp.path().join("store/pools")).is_empty());
    }
}

#[test]
fn overlay_conforms() {
    conforms_with_and_without_quota(|p| Box::new(OverlaySnapshotter::open(p).unwrap()));
}

#[test]
fn copy_conforms() {
    conforms_with_and_without_quota(|p| Box::new(CopySnapshotter::open(p).unwrap()));
}

#[test]
fn btrfs_conforms() {
    let Some(fs) = LoopBtrfs::new(512) else {
        return;
    };
    let s = BtrfsSnapshotter::open(fs.mnt.join("snap")).unwrap();
    conformance(&s, fs.dir.path(), None, true);
    assert!(snapshot_dirs(&fs.mnt.join("snap")).is_empty());
}

#[test]
fn btrfs_refuses_other_filesystems() {
    let tmp = tempfile::tempdir().unwrap();
    let e = BtrfsSnapshotter::open(tmp.path()).err().unwrap();
    assert!(e.to_string().contains("not a btrfs filesystem"), "{e}");
}
