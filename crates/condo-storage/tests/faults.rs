//! `kill -9` in the middle of instance snapshots and of an image import leaves the stores
//! consistent, and the operation can be retried.

mod common;

use common::*;
use condo_storage::content::ContentStore;
use condo_storage::image::{archive, ImageStore};
use condo_storage::instance::{InstanceError, InstanceStore};
use condo_storage::snapshot::{Kind, OverlaySnapshotter, PrepareOptions, Snapshotter};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open(dir: &Path) -> (Arc<dyn Snapshotter>, InstanceStore) {
    let s: Arc<dyn Snapshotter> = Arc::new(OverlaySnapshotter::open(dir.join("snap")).unwrap());
    let st = InstanceStore::open(dir.join("inst"), s.clone()).unwrap();
    (s, st)
}

fn spawn_child(test: &str, env: &str, val: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, val)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs child test `test` on `dir` and, once it took a snapshot (a loaded machine can be slow
/// to start it), kills it with SIGKILL `ms` later, wherever it is.
fn kill_child(test: &str, env: &str, dir: &Path, ms: u64) {
    let before = snapshots_of_app(dir);
    let mut child = spawn_child(test, env, &dir.display().to_string());
    let t = Instant::now();
    while snapshots_of_app(dir) <= before {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{test} made no progress"
        );
        assert!(child.try_wait().unwrap().is_none(), "{test} ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(ms));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The number of snapshots instance "app" at `dir` has (its record read directly: opening
/// the stores would wait for the child's lock).
fn snapshots_of_app(dir: &Path) -> usize {
    condo_storage::fsutil::read_json::<condo_storage::instance::InstanceRecord>(
        &dir.join("inst/app.json"),
    )
    .ok()
    .flatten()
    .map(|r| r.snapshots.len())
    .unwrap_or(0)
}

/// Stores at `dir` with an image and an instance "app" on it.
fn app(dir: &Path, quota: Option<u64>) -> (Arc<dyn Snapshotter>, InstanceStore) {
    let (s, st) = open(dir);
    s.prepare("b", None, &PrepareOptions::default()).unwrap();
    std::fs::write(s.fs_path("b").unwrap().join("base"), b"x").unwrap();
    s.commit("image", "b").unwrap();
    st.create("app", Some("image"), quota).unwrap();
    (s, st)
}

/// Child of `killed_snapshots_recover`: takes snapshots until it is killed.
#[test]
fn child_snapshots() {
    snapshot_forever("CONDO_TEST_CHILD_SNAPSHOTS", |st, n| {
        st.snapshot("app", n).map(drop)
    });
}

/// In a child run (`env` names the store): takes snapshots s0, s1, … of "app" (skipping names
/// taken) until it is killed.
fn snapshot_forever(env: &str, take: impl Fn(&InstanceStore, &str) -> Result<(), InstanceError>) {
    let Ok(dir) = std::env::var(env) else {
        return;
    };
    let (_, st) = open(Path::new(&dir));
    for i in 0.. {
        match take(&st, &format!("s{i}")) {
            Err(InstanceError::SnapshotExists { .. }) => continue,
            r => r.unwrap(),
        }
    }
}

#[test]
fn killed_snapshots_recover() {
    killed_snapshots(None);
}

/// The same where the instance's layer is in a quota pool (its snapshots made in place).
#[test]
fn killed_snapshots_with_a_quota_recover() {
    killed_snapshots(Some(64 << 20));
}

fn killed_snapshots(quota: Option<u64>) {
    if !root() {
        return;
    }
    let tmp = Scratch::new();
    app(tmp.path(), quota);
    for round in 0..3 {
        kill_child(
            "child_snapshots",
            "CONDO_TEST_CHILD_SNAPSHOTS",
            tmp.path(),
            70 * round,
        );
        let (s, st) = open(tmp.path());
        let r = st.load("app").unwrap();
        assert!(r.pending.is_none());
        assert!(!r.snapshots.is_empty(), "child took no snapshot");
        for snap in &r.snapshots {
            s.stat(&condo_storage::instance::snapshot_key("app", &snap.name))
                .unwrap();
        }
        let actives: Vec<String> = s
            .walk()
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .filter(|n| n.starts_with("inst/app/"))
            .collect();
        assert_eq!(actives.len(), 1, "{actives:?}");
        let m = st.mounts("app").unwrap();
        {
            let _g = MountGuard::new(&m, &tmp.path().join("mnt"));
            assert!(tmp.path().join("mnt/base").exists());
        }
        st.snapshot("app", &format!("after-{round}")).unwrap();
        st.rollback("app", &r.snapshots[0].name).unwrap();
    }
    let (s, st) = open(tmp.path());
    st.delete("app").unwrap();
    s.remove("image").unwrap();
    assert!(names(&tmp.path().join("snap/snapshots")).is_empty());
    assert!(names(&tmp.path().join("snap/pools")).is_empty());
}

/// A reader that trickles data, so that a kill lands in the middle of an import.
struct Slow<R>(R);

impl<R: Read> Read for Slow<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(2));
        let n = buf.len().min(64 << 10);
        self.0.read(&mut buf[..n])
    }
}

/// Child of `killed_import_is_consistent_and_retryable`.
#[test]
fn child_import() {
    let Ok(args) = std::env::var("CONDO_TEST_CHILD_IMPORT") else {
        return;
    };
    let (dir, file) = args.split_once('|').unwrap();
    let images = ImageStore::open(
        Path::new(dir).join("images"),
        ContentStore::open(Path::new(dir).join("content")).unwrap(),
    )
    .unwrap();
    let _ = archive::import_archive(&images, Slow(std::fs::File::open(file).unwrap()), None);
}

#[test]
fn killed_import_is_consistent_and_retryable() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..16u32 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut big = TarBuilder::new();
    big.file("big.bin", 0o644, &noise);
    write_layout(
        &layout,
        &[(
            "v1",
            vec![
                (busybox_layer(), "application/vnd.oci.image.layer.v1.tar"),
                (big.finish(), "application/vnd.oci.image.layer.v1.tar"),
            ],
        )],
    );
    let tarball = tmp.path().join("image.tar");
    sh(&format!(
        "tar -cf {} -C {} .",
        tarball.display(),
        layout.display()
    ));
    let store = tmp.path().join("store");
    let images = ImageStore::open(
        store.join("images"),
        ContentStore::open(store.join("content")).unwrap(),
    )
    .unwrap();

    let mut child = spawn_child(
        "child_import",
        "CONDO_TEST_CHILD_IMPORT",
        &format!("{}|{}", store.display(), tarball.display()),
    );
    let t = Instant::now();
    let partial = || -> u64 {
        std::fs::read_dir(store.join("content/ingest"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    while partial() < 1 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "child made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "child finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        images.list().unwrap().is_empty(),
        "a record appeared for a half import"
    );
    for d in images.content().list().unwrap() {
        images.content().verify(&d).unwrap();
    }
    let recs =
        archive::import_archive(&images, std::fs::File::open(&tarball).unwrap(), None).unwrap();
    assert_eq!(recs.len(), 1);
    let (_, m) = images.manifest(&recs[0].target).unwrap();
    for l in &m.layers {
        images.content().verify(&l.digest).unwrap();
    }
    // Stale ingests of the killed import go with the next collection once idle.
    let r = images
        .content()
        .gc(
            images.list().unwrap().into_iter().map(|r| r.target.digest),
            Duration::ZERO,
        )
        .unwrap();
    assert!(r.ingests >= 1);
    assert!(images.content().ingests().unwrap().is_empty());
}

/// Child of `killed_live_snapshots_recover`: snapshots the mounted instance until killed.
#[test]
fn child_live_snapshots() {
    snapshot_forever("CONDO_TEST_CHILD_LIVE", |st, n| {
        st.snapshot_running("app", n)
    });
}

/// A kill part way through a live snapshot (of a layer in its quota pool) must not leave its
/// writers blocked, nor a half snapshot, and the same snapshot can be taken again.
#[test]
fn killed_live_snapshots_recover() {
    if !root() {
        return;
    }
    let tmp = Scratch::new();
    let (s, st) = app(tmp.path(), Some(64 << 20));
    let mnt = tmp.path().join("mnt");
    let live = MountGuard::new(&st.mounts("app").unwrap(), &mnt);
    std::fs::write(mnt.join("data"), vec![3u8; 4 << 20]).unwrap();
    for round in 0..4u64 {
        kill_child(
            "child_live_snapshots",
            "CONDO_TEST_CHILD_LIVE",
            tmp.path(),
            37 * round,
        );
        let (s, st) = open(tmp.path());
        // Writes to the instance still go through.
        sh(&format!(
            "timeout 20 sh -c 'echo {round} > {}/after'",
            mnt.display()
        ));
        let r = st.load("app").unwrap();
        assert!(!r.snapshots.is_empty(), "child took no snapshot");
        let ids: std::collections::HashSet<String> = s
            .walk()
            .unwrap()
            .into_iter()
            .map(|i| i.id.to_string())
            .collect();
        for n in names(&tmp.path().join("snap/snapshots")) {
            let id = n.split('.').next().unwrap();
            assert!(ids.contains(id), "{n} left behind");
            assert!(!n.ends_with(".frozen"), "{n} left behind");
        }
        // Each pool holds the subvolumes of known snapshots only.
        for p in names(&tmp.path().join("snap/pools")) {
            if let Some(pool) = p.strip_suffix(".img") {
                for n in names(&tmp.path().join("snap/pools").join(pool)) {
                    assert!(ids.contains(&n), "pool {pool}: {n} left behind");
                }
            }
        }
        for snap in &r.snapshots {
            let k = condo_storage::instance::snapshot_key("app", &snap.name);
            assert_eq!(s.stat(&k).unwrap().kind, Kind::Committed);
        }
        // The name the child was taking when it died can be taken again.
        let next = format!("s{}", r.snapshots.len());
        st.snapshot_running("app", &next).unwrap();
        st.clone_from("app", &next, &format!("c{round}"), None)
            .unwrap();
        let m = st.mounts(&format!("c{round}")).unwrap();
        let _c = MountGuard::new(&m, &tmp.path().join("clone"));
        let data = std::fs::read(tmp.path().join("clone/data")).unwrap();
        assert_eq!(data, vec![3u8; 4 << 20]);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("clone/after")).unwrap(),
            format!("{round}\n")
        );
    }
    drop(live);
    for round in 0..4 {
        st.delete(&format!("c{round}")).unwrap();
    }
    st.delete("app").unwrap();
    s.remove("image").unwrap();
    assert!(names(&tmp.path().join("snap/snapshots")).is_empty());
    assert!(names(&tmp.path().join("snap/pools")).is_empty());
}

/// A create killed between making the writable layer and saving the record can be retried.
#[test]
fn create_after_a_killed_create() {
    if !root() {
        return;
    }
    let tmp = Scratch::new();
    let (s, st) = app(tmp.path(), None);
    // What the killed create left: the layer of generation 0, no record.
    s.prepare("inst/web/0", Some("image"), &PrepareOptions::default())
        .unwrap();
    std::fs::write(s.fs_path("inst/web/0").unwrap().join("stale"), b"x").unwrap();
    assert!(st.get("web").is_err());
    let m = st.create("web", Some("image"), None).unwrap();
    {
        let _g = MountGuard::new(&m, &tmp.path().join("mnt"));
        assert_eq!(names(&tmp.path().join("mnt")), vec!["base"]);
    }
    st.delete("web").unwrap();
    st.delete("app").unwrap();
    s.remove("image").unwrap();
    assert!(s.walk().unwrap().is_empty());
}
