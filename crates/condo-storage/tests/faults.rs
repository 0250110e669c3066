//! `kill -9` in the middle of instance snapshots and of an image import leaves the stores
//! consistent, and the operation can be retried.

mod common;

use common::*;
use condo_storage::content::ContentStore;
use condo_storage::image::{archive, ImageStore};
use condo_storage::instance::InstanceStore;
use condo_storage::snapshot::{OverlaySnapshotter, PrepareOptions, Snapshotter};
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

/// Child of `killed_snapshots_recover`: takes snapshots until it is killed.
#[test]
fn child_snapshots() {
    let Ok(dir) = std::env::var("CONDO_TEST_CHILD_SNAPSHOTS") else {
        return;
    };
    let (_, st) = open(Path::new(&dir));
    for i in 0.. {
        st.snapshot("app", &format!("s{i}")).unwrap();
    }
}

#[test]
fn killed_snapshots_recover() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (s, st) = open(tmp.path());
    s.prepare("b", None, &PrepareOptions::default()).unwrap();
    std::fs::write(s.fs_path("b").unwrap().join("base"), b"x").unwrap();
    s.commit("image", "b").unwrap();
    st.create("app", Some("image"), None).unwrap();
    for round in 0..3 {
        let mut child = spawn_child(
            "child_snapshots",
            "CONDO_TEST_CHILD_SNAPSHOTS",
            &tmp.path().display().to_string(),
        );
        std::thread::sleep(Duration::from_millis(150 + 70 * round));
        child.kill().unwrap(); // SIGKILL, wherever it is
        child.wait().unwrap();
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
