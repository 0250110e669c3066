//! Instances on every backend: create, snapshot, rollback, clone, delete one snapshot, quota.

mod common;

use common::*;
use condo_storage::instance::{InstanceError, InstanceStore};
use condo_storage::snapshot::{
    BtrfsSnapshotter, CopySnapshotter, OverlaySnapshotter, PrepareOptions, Snapshotter,
};
use std::fs;
use std::path::Path;
use std::sync::Arc;

fn base_layer(s: &dyn Snapshotter, work: &Path) {
    let m = s
        .prepare("tmp-base", None, &PrepareOptions::default())
        .unwrap();
    {
        let _g = MountGuard::new(&m, &work.join("mnt"));
        fs::write(work.join("mnt/os-release"), b"condo").unwrap();
    }
    s.commit("image", "tmp-base").unwrap();
}

fn write(store: &InstanceStore, name: &str, work: &Path, file: &str, data: &[u8]) {
    let _g = MountGuard::new(&store.mounts(name).unwrap(), &work.join("mnt"));
    fs::write(work.join("mnt").join(file), data).unwrap();
}

fn tree(store: &InstanceStore, name: &str, work: &Path) -> Vec<(String, String)> {
    let _g = MountGuard::new(&store.mounts(name).unwrap(), &work.join("mnt"));
    names(&work.join("mnt"))
        .into_iter()
        .map(|n| {
            let c = fs::read_to_string(work.join("mnt").join(&n)).unwrap();
            (n, c)
        })
        .collect()
}

fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn lifecycle(s: Arc<dyn Snapshotter>, work: &Path) {
    base_layer(s.as_ref(), work);
    let st = InstanceStore::open(work.join("instances"), s.clone()).unwrap();
    st.create("web", Some("image"), None).unwrap();
    assert!(matches!(
        st.create("web", Some("image"), None),
        Err(InstanceError::Exists(_))
    ));
    write(&st, "web", work, "a", b"1");
    st.snapshot("web", "s1").unwrap();
    write(&st, "web", work, "a", b"2");
    write(&st, "web", work, "b", b"2");
    st.snapshot("web", "s2").unwrap();
    write(&st, "web", work, "c", b"3");
    assert_eq!(
        tree(&st, "web", work),
        kv(&[("a", "2"), ("b", "2"), ("c", "3"), ("os-release", "condo")])
    );

    st.rollback("web", "s1").unwrap();
    assert_eq!(
        tree(&st, "web", work),
        kv(&[("a", "1"), ("os-release", "condo")])
    );

    st.clone_from("web", "s2", "web2", None).unwrap();
    assert_eq!(
        tree(&st, "web2", work),
        kv(&[("a", "2"), ("b", "2"), ("os-release", "condo")])
    );

    // Deleting s1 (which s2 and the live instance sit on) leaves everything else intact.
    st.delete_snapshot("web", "s1").unwrap();
    let snaps = st.snapshots("web").unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["s2"]
    );
    assert!(snaps[0].size > 0);
    assert_eq!(
        tree(&st, "web", work),
        kv(&[("a", "1"), ("os-release", "condo")])
    );
    st.rollback("web", "s2").unwrap();
    assert_eq!(
        tree(&st, "web", work),
        kv(&[("a", "2"), ("b", "2"), ("os-release", "condo")])
    );
    assert!(matches!(
        st.rollback("web", "s1"),
        Err(InstanceError::NoSnapshot { .. })
    ));

    st.delete("web").unwrap();
    assert_eq!(
        tree(&st, "web2", work),
        kv(&[("a", "2"), ("b", "2"), ("os-release", "condo")])
    );
    st.delete("web2").unwrap();
    let left: Vec<String> = s.walk().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(left, vec!["image"]);
    s.remove("image").unwrap();
}

#[test]
fn overlay_instances() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    lifecycle(
        Arc::new(OverlaySnapshotter::open(tmp.path().join("ov")).unwrap()),
        tmp.path(),
    );
    assert!(names(&tmp.path().join("ov/snapshots")).is_empty());
}

#[test]
fn copy_instances() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    lifecycle(
        Arc::new(CopySnapshotter::open(tmp.path().join("cp")).unwrap()),
        tmp.path(),
    );
}

#[test]
fn btrfs_instances() {
    let Some(fs) = LoopBtrfs::new(512) else {
        return;
    };
    lifecycle(
        Arc::new(BtrfsSnapshotter::open(fs.mnt.join("snap")).unwrap()),
        fs.dir.path(),
    );
    assert!(names(&fs.mnt.join("snap/snapshots")).is_empty());
}

/// Writes until the filesystem refuses; returns the bytes written and the error.
fn fill(dir: &Path) -> (u64, std::io::Error) {
    use std::io::Write;
    let mut f = fs::File::create(dir.join("fill")).unwrap();
    let chunk = vec![1u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match f.write_all(&chunk).and_then(|_| f.sync_data()) {
            Ok(()) => n += chunk.len() as u64,
            Err(e) => return (n, e),
        }
        assert!(n < 1 << 30, "quota never hit");
    }
}

/// An overlay snapshotter and instance store in `dir`, with the base image.
fn overlay_store(dir: &Path) -> (Arc<dyn Snapshotter>, InstanceStore) {
    let s: Arc<dyn Snapshotter> = Arc::new(OverlaySnapshotter::open(dir.join("ov")).unwrap());
    if s.stat("image").is_err() {
        base_layer(s.as_ref(), dir);
    }
    let st = InstanceStore::open(dir.join("i"), s.clone()).unwrap();
    (s, st)
}

#[test]
fn overlay_quota_is_a_hard_limit_and_df_shows_it() {
    if !root() {
        return;
    }
    let tmp = Scratch::new();
    let (s, st) = overlay_store(tmp.path());
    st.create("q", Some("image"), Some(64 << 20)).unwrap();
    st.create("free", Some("image"), None).unwrap();
    {
        let _g = MountGuard::new(&st.mounts("q").unwrap(), &tmp.path().join("mnt"));
        let vfs = rustix::fs::statvfs(tmp.path().join("mnt")).unwrap();
        let total = vfs.f_blocks * vfs.f_frsize;
        assert!(total <= 64 << 20 && total > 40 << 20, "df shows {total}");
        let (n, e) = fill(&tmp.path().join("mnt"));
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert!(n < 64 << 20);
    }
    // Full to the last block and stopped, it can still be snapshotted, and rolled back to.
    st.snapshot("q", "full").unwrap();
    write(&st, "q", tmp.path(), "fill", b"");
    st.rollback("q", "full").unwrap();
    {
        let _g = MountGuard::new(&st.mounts("q").unwrap(), &tmp.path().join("mnt"));
        let filled = fs::metadata(tmp.path().join("mnt/fill")).unwrap().len();
        assert!(filled > 40 << 20, "{filled}");
    }
    // The other instance is unaffected.
    write(&st, "free", tmp.path(), "x", &vec![0u8; 1 << 20]);
    st.delete("q").unwrap();
    st.delete("free").unwrap();
    s.remove("image").unwrap();
    assert!(names(&tmp.path().join("ov/snapshots")).is_empty());
    assert!(names(&tmp.path().join("ov/pools")).is_empty());
}

/// A live snapshot of a layer with a quota shares its pool: what the snapshot holds counts
/// against the instance's limit until the snapshot goes (or a rollback starts a new layer).
/// After a reboot the pools are mounted again on first use.
#[test]
fn overlay_quota_pool_holds_live_snapshots_and_survives_a_reboot() {
    if !root() {
        return;
    }
    let tmp = Scratch::new();
    let (_, st) = overlay_store(tmp.path());
    st.create("q", Some("image"), Some(64 << 20)).unwrap();
    let mnt = tmp.path().join("mnt");
    let used = || {
        let v = rustix::fs::statvfs(&mnt).unwrap();
        (v.f_blocks - v.f_bfree) * v.f_frsize
    };
    {
        let _g = MountGuard::new(&st.mounts("q").unwrap(), &mnt);
        fs::write(mnt.join("a"), vec![7u8; 24 << 20]).unwrap();
        rustix::fs::sync();
        st.snapshot_running("q", "s1").unwrap();
        fs::remove_file(mnt.join("a")).unwrap();
        rustix::fs::sync();
        assert!(
            used() > 20 << 20,
            "the snapshot's data was freed: {}",
            used()
        );
        st.delete_snapshot("q", "s1").unwrap();
        rustix::fs::sync();
        // btrfs frees a deleted subvolume's blocks in the background.
        let mut n = 0;
        while used() > 20 << 20 && n < 100 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            rustix::fs::sync();
            n += 1;
        }
        assert!(used() < 20 << 20, "still used: {}", used());
        fs::write(mnt.join("b"), b"kept").unwrap();
        st.snapshot_running("q", "s2").unwrap();
        fs::write(mnt.join("b"), b"changed").unwrap();
    }
    unmount_below(tmp.path());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("{}/", tmp.path().display())));
    let (s, st) = overlay_store(tmp.path());
    assert_eq!(
        tree(&st, "q", tmp.path()),
        kv(&[("b", "changed"), ("os-release", "condo")])
    );
    st.clone_from("q", "s2", "c", None).unwrap();
    assert_eq!(
        tree(&st, "c", tmp.path()),
        kv(&[("b", "kept"), ("os-release", "condo")])
    );
    // Stopped, it is snapshotted in its pool too: no new pool, no new layer on the stack.
    let pools = names(&tmp.path().join("ov/pools"));
    st.snapshot("q", "s3").unwrap();
    assert_eq!(names(&tmp.path().join("ov/pools")), pools);
    assert_eq!(st.get("q").unwrap().generation, 0);
    write(&st, "q", tmp.path(), "b", b"again");
    st.rollback("q", "s3").unwrap();
    assert_eq!(
        tree(&st, "q", tmp.path()),
        kv(&[("b", "changed"), ("os-release", "condo")])
    );
    let snaps = st.snapshots("q").unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().all(|s| s.size > 0));
    st.delete("q").unwrap();
    st.delete("c").unwrap();
    s.remove("image").unwrap();
    assert!(names(&tmp.path().join("ov/snapshots")).is_empty());
    assert!(names(&tmp.path().join("ov/pools")).is_empty());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("{}/", tmp.path().display())));
}

#[test]
fn btrfs_quota_is_a_hard_limit() {
    let Some(fs) = LoopBtrfs::new(1024) else {
        return;
    };
    let s: Arc<dyn Snapshotter> = Arc::new(BtrfsSnapshotter::open(fs.mnt.join("snap")).unwrap());
    base_layer(s.as_ref(), fs.dir.path());
    let st = InstanceStore::open(fs.dir.path().join("i"), s.clone()).unwrap();
    st.create("q", Some("image"), Some(64 << 20)).unwrap();
    {
        let _g = MountGuard::new(&st.mounts("q").unwrap(), &fs.dir.path().join("mnt"));
        let (n, e) = fill(&fs.dir.path().join("mnt"));
        // btrfs reports a qgroup limit as EDQUOT.
        assert!(
            matches!(e.raw_os_error(), Some(libc::EDQUOT) | Some(libc::ENOSPC)),
            "{e}"
        );
        assert!(n <= 64 << 20, "{n}");
    }
    st.delete("q").unwrap();
}

#[test]
fn btrfs_snapshot_of_a_running_instance() {
    let Some(fs) = LoopBtrfs::new(512) else {
        return;
    };
    let work = fs.dir.path();
    let s: Arc<dyn Snapshotter> = Arc::new(BtrfsSnapshotter::open(fs.mnt.join("snap")).unwrap());
    base_layer(s.as_ref(), work);
    let st = InstanceStore::open(work.join("i"), s.clone()).unwrap();
    st.create("live", Some("image"), None).unwrap();
    let live = work.join("live");
    {
        let _g = MountGuard::new(&st.mounts("live").unwrap(), &live);
        fs::write(live.join("a"), b"before").unwrap();
        // Taken while mounted and in use; the mount keeps working afterwards.
        st.snapshot("live", "s1").unwrap();
        fs::write(live.join("a"), b"after").unwrap();
        fs::write(live.join("b"), b"after").unwrap();
    }
    st.clone_from("live", "s1", "copy", None).unwrap();
    assert_eq!(
        tree(&st, "copy", work),
        kv(&[("a", "before"), ("os-release", "condo")])
    );
    assert_eq!(
        tree(&st, "live", work),
        kv(&[("a", "after"), ("b", "after"), ("os-release", "condo")])
    );
    st.rollback("live", "s1").unwrap();
    assert_eq!(
        tree(&st, "live", work),
        kv(&[("a", "before"), ("os-release", "condo")])
    );
    st.delete("copy").unwrap();
    st.delete("live").unwrap();
    s.remove("image").unwrap();
    assert!(s.walk().unwrap().is_empty());
}

/// Snapshots an overlay instance while it is mounted, a process with its working directory in
/// it keeps appending to a file, and the test holds another file open and writes to it after
/// the snapshot. The snapshot holds exactly the state at the moment it was taken.
fn overlay_live(work: &Path, quota: Option<u64>) {
    let (s, st) = overlay_store(work);
    st.create("live", Some("image"), quota).unwrap();
    let live = work.join("live");
    {
        let _g = MountGuard::new(&st.mounts("live").unwrap(), &live);
        let mut held = fs::File::create(live.join("held")).unwrap();
        use std::io::Write;
        held.write_all(b"before").unwrap();
        let mut writer = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3>>log; i=0; while :; do echo \"line $i\" >&3; i=$((i+1)); done")
            .current_dir(&live)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        // The caller stops the writers, as condod's freezer does: with a quota too, since a
        // btrfs snapshot taken while a file is appended to can hold the file's size ahead of
        // its data (a tail of zeros; CI caught one).
        sh(&format!("kill -STOP {}", writer.id()));
        st.snapshot_running("live", "s1").unwrap();
        sh(&format!("kill -CONT {}", writer.id()));
        held.write_all(b" after").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert_eq!(fs::read(live.join("held")).unwrap(), b"before after");
    }
    // Each file is whole and consecutive lines from 0: a point in time, not a torn copy.
    let lines = |name: &str| -> usize {
        let _g = MountGuard::new(&st.mounts(name).unwrap(), &work.join("mnt"));
        assert_eq!(fs::read(work.join("mnt/os-release")).unwrap(), b"condo");
        let log = fs::read_to_string(work.join("mnt/log")).unwrap();
        let log = log.strip_suffix('\n').unwrap_or(&log);
        for (i, l) in log.split('\n').enumerate() {
            assert_eq!(l, format!("line {i}"), "{name}");
        }
        log.split('\n').count()
    };
    let now = lines("live");
    st.clone_from("live", "s1", "copy", None).unwrap();
    let then = lines("copy");
    assert!(then > 0 && then < now, "snapshot {then} lines, live {now}");
    assert_eq!(
        tree(&st, "copy", work)
            .into_iter()
            .find(|(n, _)| n == "held"),
        Some(("held".into(), "before".into()))
    );
    // The clone is writable and its own; rollback of the source goes back to the snapshot.
    write(&st, "copy", work, "held", b"clone");
    st.rollback("live", "s1").unwrap();
    assert_eq!(lines("live"), then);
    let snaps = st.snapshots("live").unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].size > 0);
    st.delete("live").unwrap();
    st.delete("copy").unwrap();
    s.remove("image").unwrap();
    assert!(names(&work.join("ov/snapshots")).is_empty());
    assert!(names(&work.join("ov/pools")).is_empty());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("{}/", work.display())),
        "{mounts}"
    );
}

#[test]
fn overlay_snapshot_of_a_running_instance_with_quota() {
    if root() {
        // /tmp is ext4 here: the layer's btrfs pool is what makes the snapshot O(1).
        overlay_live(Scratch::new().path(), Some(256 << 20));
    }
}

#[test]
fn overlay_snapshot_of_a_running_instance_without_quota() {
    if root() {
        overlay_live(Scratch::new().path(), None);
    }
}

#[test]
fn overlay_on_btrfs_snapshot_of_a_running_instance_with_quota() {
    // The same on a btrfs host, where pools are reflinks of the empty one.
    if let Some(fs) = LoopBtrfs::new(1024) {
        overlay_live(&fs.mnt, Some(256 << 20));
    }
}
