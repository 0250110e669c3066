//! Backups: full export with snapshots, import onto another backend, incremental export,
//! export without snapshots.

mod common;

use common::*;
use condo_storage::instance::backup::ExportOptions;
use condo_storage::instance::InstanceStore;
use condo_storage::snapshot::{BtrfsSnapshotter, OverlaySnapshotter, PrepareOptions, Snapshotter};
use std::fs;
use std::path::Path;
use std::sync::Arc;

fn with_mount<T>(st: &InstanceStore, name: &str, at: &Path, f: impl FnOnce(&Path) -> T) -> T {
    let _g = MountGuard::new(&st.mounts(name).unwrap(), at);
    f(at)
}

/// Every file with its content and mode, and every symlink, sorted.
fn listing(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            let m = fs::symlink_metadata(&e).unwrap();
            let rel = e.strip_prefix(dir).unwrap().display().to_string();
            if m.is_dir() {
                out.push(format!("{rel}/ {:o}", m.mode()));
                stack.push(e);
            } else if m.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&e).unwrap().display()));
            } else {
                out.push(format!(
                    "{rel} {:o} {}",
                    m.mode(),
                    String::from_utf8_lossy(&fs::read(&e).unwrap())
                ));
            }
        }
    }
    out.sort();
    out
}

fn state(st: &InstanceStore, name: &str, work: &Path) -> Vec<String> {
    with_mount(st, name, &work.join("mnt"), listing)
}

#[test]
fn export_import_incremental_across_backends() {
    let Some(bfs) = LoopBtrfs::new(512) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ov: Arc<dyn Snapshotter> = Arc::new(OverlaySnapshotter::open(work.join("ov")).unwrap());
    let m = ov.prepare("b", None, &PrepareOptions::default()).unwrap();
    with_mount_raw(&m, &work.join("mnt"), |d| {
        fs::create_dir(d.join("etc")).unwrap();
        fs::write(d.join("etc/base"), b"image").unwrap();
        fs::write(d.join("etc/gone-later"), b"image").unwrap();
    });
    ov.commit("image", "b").unwrap();
    let src = InstanceStore::open(work.join("src"), ov.clone()).unwrap();
    src.create("app", Some("image"), None).unwrap();
    with_mount(&src, "app", &work.join("mnt"), |d| {
        fs::write(d.join("one"), b"1").unwrap();
        std::os::unix::fs::symlink("one", d.join("link")).unwrap();
    });
    src.snapshot("app", "s1").unwrap();
    with_mount(&src, "app", &work.join("mnt"), |d| {
        fs::write(d.join("one"), b"one again").unwrap();
        fs::remove_file(d.join("etc/gone-later")).unwrap();
        fs::hard_link(d.join("one"), d.join("one-hard")).unwrap();
    });
    src.snapshot("app", "s2").unwrap();
    with_mount(&src, "app", &work.join("mnt"), |d| {
        fs::write(d.join("current"), b"c").unwrap()
    });
    let want_current = state(&src, "app", work);

    let full = work.join("full.tar.zst");
    let parts = std::sync::Mutex::new(0);
    src.export(
        "app",
        &ExportOptions {
            snapshots: true,
            since: None,
        },
        fs::File::create(&full).unwrap(),
        &|_| *parts.lock().unwrap() += 1,
    )
    .unwrap();
    assert_eq!(*parts.lock().unwrap(), 3);

    // Onto btrfs.
    let bt: Arc<dyn Snapshotter> = Arc::new(BtrfsSnapshotter::open(bfs.mnt.join("snap")).unwrap());
    let dst = InstanceStore::open(work.join("dst"), bt.clone()).unwrap();
    let rec = dst
        .import(fs::File::open(&full).unwrap(), None, &|_| {})
        .unwrap();
    assert_eq!(
        rec.snapshots
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec!["s1", "s2"]
    );
    assert_eq!(state(&dst, "app", work), want_current);
    for s in ["s1", "s2"] {
        src.clone_from("app", s, &format!("src-{s}"), None).unwrap();
        dst.clone_from("app", s, &format!("dst-{s}"), None).unwrap();
        assert_eq!(
            state(&dst, &format!("dst-{s}"), work),
            state(&src, &format!("src-{s}"), work),
            "snapshot {s}"
        );
    }
    assert!(state(&dst, "dst-s2", work)
        .iter()
        .any(|l| l.starts_with("one-hard")));
    assert!(!state(&dst, "dst-s2", work)
        .iter()
        .any(|l| l.starts_with("etc/gone-later")));

    // Incremental: what changed after s2.
    with_mount(&src, "app", &work.join("mnt"), |d| {
        fs::write(d.join("three"), b"3").unwrap();
        fs::remove_file(d.join("link")).unwrap();
    });
    src.snapshot("app", "s3").unwrap();
    with_mount(&src, "app", &work.join("mnt"), |d| {
        fs::write(d.join("after-s3"), b"x").unwrap()
    });
    let inc = work.join("inc.tar.zst");
    src.export(
        "app",
        &ExportOptions {
            snapshots: true,
            since: Some("s2".into()),
        },
        fs::File::create(&inc).unwrap(),
        &|_| {},
    )
    .unwrap();
    assert!(fs::metadata(&inc).unwrap().len() < fs::metadata(&full).unwrap().len());
    let rec = dst
        .import(fs::File::open(&inc).unwrap(), None, &|_| {})
        .unwrap();
    assert_eq!(
        rec.snapshots
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec!["s1", "s2", "s3"]
    );
    assert_eq!(state(&dst, "app", work), state(&src, "app", work));

    // Without snapshots: just the current tree.
    let solo = work.join("solo.tar.zst");
    src.export(
        "app",
        &ExportOptions::default(),
        fs::File::create(&solo).unwrap(),
        &|_| {},
    )
    .unwrap();
    let rec = dst
        .import(fs::File::open(&solo).unwrap(), Some("solo"), &|_| {})
        .unwrap();
    assert!(rec.snapshots.is_empty());
    assert_eq!(state(&dst, "solo", work), state(&src, "app", work));

    // A stream cut short is refused and leaves nothing.
    let data = fs::read(&full).unwrap();
    let before = bt.walk().unwrap().len();
    assert!(dst
        .import(&data[..data.len() / 2], Some("cut"), &|_| {})
        .is_err());
    assert_eq!(bt.walk().unwrap().len(), before);
    assert!(dst.get("cut").is_err());

    for n in ["solo", "dst-s1", "dst-s2", "app"] {
        dst.delete(n).unwrap();
    }
    assert!(bt.walk().unwrap().is_empty());
    for n in ["src-s1", "src-s2", "app"] {
        src.delete(n).unwrap();
    }
}

fn with_mount_raw(m: &[condo_storage::snapshot::Mount], at: &Path, f: impl FnOnce(&Path)) {
    let _g = MountGuard::new(m, at);
    f(at)
}
