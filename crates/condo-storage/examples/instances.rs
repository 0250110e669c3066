//! Instance create / snapshot / clone timings (used by bench/storage-instances.sh).
//! Usage: instances overlay|btrfs ROOT ROUNDS

use condo_storage::instance::InstanceStore;
use condo_storage::snapshot::{
    mount_all, unmount, BtrfsSnapshotter, OverlaySnapshotter, PrepareOptions, Snapshotter,
};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn write_mib(dir: &Path, mib: usize, files: usize) -> R<()> {
    let chunk = vec![0x5au8; 1 << 20];
    for f in 0..files {
        let mut out = std::fs::File::create(dir.join(format!("f{f}")))?;
        for _ in 0..mib / files {
            out.write_all(&chunk)?;
        }
    }
    Ok(())
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// Waits until deleted subvolumes are cleaned, so that their cleanup does not land on the
/// next measurement (btrfs removes them in the background, inside later transactions).
fn settle(backend: &str, root: &Path) {
    if backend == "btrfs" {
        let _ = Command::new("btrfs")
            .args(["subvolume", "sync"])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .status();
    }
    sync();
}

fn main() -> R<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, backend, root, rounds] = &args[..] else {
        return Err("usage: instances overlay|btrfs ROOT ROUNDS".into());
    };
    let rounds: usize = rounds.parse()?;
    let root = Path::new(root);
    let snap: Arc<dyn Snapshotter> = match backend.as_str() {
        "overlay" => Arc::new(OverlaySnapshotter::open(root.join("snap"))?),
        "btrfs" => Arc::new(BtrfsSnapshotter::open(root.join("snap"))?),
        b => return Err(format!("unknown backend {b}").into()),
    };
    let st = InstanceStore::open(root.join("inst"), snap.clone())?;
    let mnt = root.join("mnt");
    std::fs::create_dir_all(&mnt)?;
    for (label, mib, files) in [("10MiB", 10, 10), ("1GiB", 1024, 256)] {
        let key = format!("image-{label}");
        snap.prepare("tmp", None, &PrepareOptions::default())?;
        write_mib(&snap.fs_path("tmp")?, mib, files)?;
        snap.commit(&key, "tmp")?;
        sync();
        let (mut create, mut create_mount) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            let name = format!("i-{label}-{i}");
            let t = Instant::now();
            let m = st.create(&name, Some(&key), None)?;
            create.push(ms(t));
            mount_all(&m, &mnt)?;
            create_mount.push(ms(t));
            unmount(&mnt)?;
        }
        println!(
            "{backend} create {label}: median {:.2} ms (with mount {:.2} ms), {rounds} rounds",
            median(create),
            median(create_mount)
        );
        // A full copy of the same rootfs, as a dir backend would make.
        let m = st.mounts(&format!("i-{label}-0"))?;
        mount_all(&m, &mnt)?;
        let copy = root.join("copy");
        sync();
        let t = Instant::now();
        let ok = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&mnt)
            .arg(&copy)
            .status()?
            .success();
        let cp = ms(t);
        unmount(&mnt)?;
        let _ = std::fs::remove_dir_all(&copy);
        println!("{backend} cp -a --reflink=auto of the {label} rootfs: {cp:.1} ms (ok={ok})");
        for i in 0..rounds {
            st.delete(&format!("i-{label}-{i}"))?;
        }
        settle(backend, root);
        if label == "1GiB" {
            // Snapshot after the instance wrote 1 GiB, then clone from it.
            let (mut snaps, mut clones) = (Vec::new(), Vec::new());
            for i in 0..rounds.min(5) {
                let name = format!("w-{i}");
                let m = st.create(&name, Some(&key), None)?;
                mount_all(&m, &mnt)?;
                write_mib(&mnt, 1024, 64)?;
                unmount(&mnt)?;
                sync();
                let t = Instant::now();
                st.snapshot(&name, "s")?;
                snaps.push(ms(t));
                let t = Instant::now();
                st.clone_from(&name, "s", &format!("c-{i}"), None)?;
                clones.push(ms(t));
            }
            println!("{backend} snapshot after writing 1GiB: median {:.2} ms; clone from it: median {:.2} ms", median(snaps.clone()), median(clones));
            let m = st.mounts("w-0")?;
            mount_all(&m, &mnt)?;
            sync();
            let t = Instant::now();
            let ok = Command::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(&mnt)
                .arg(&copy)
                .status()?
                .success();
            let cp = ms(t);
            unmount(&mnt)?;
            let _ = std::fs::remove_dir_all(&copy);
            println!(
                "{backend} cp -a --reflink=auto of that instance (2GiB): {cp:.1} ms (ok={ok})"
            );
            for i in 0..rounds.min(5) {
                st.delete(&format!("c-{i}"))?;
                st.delete(&format!("w-{i}"))?;
            }
            settle(backend, root);
            live(&st, &key, &mnt, &root.join("copy"), rounds.min(5))?;
        }
        snap.remove(&key)?;
        settle(backend, root);
    }
    Ok(())
}

/// Runs `cp -a --reflink=auto` of `from` to `to`; returns the milliseconds it took.
fn cp_ms(from: &Path, to: &Path) -> R<f64> {
    sync();
    let t = Instant::now();
    if !Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(to)
        .status()?
        .success()
    {
        return Err("cp failed".into());
    }
    let ms = ms(t);
    std::fs::remove_dir_all(to)?;
    Ok(ms)
}

/// Instances with a 4 GiB quota that wrote 1 GiB and stay mounted: a snapshot while mounted
/// right after the write (its dirty data still in the page cache, which a consistent snapshot
/// must write out), and one after `sync` (A) beside a full copy of the same mounted tree (B),
/// alternating, then one of it unmounted (stopped), then a clone from the first.
fn live(st: &InstanceStore, image: &str, mnt: &Path, copy: &Path, rounds: usize) -> R<()> {
    let backend = st.snapshotter().backend();
    let (mut create, mut dirty, mut snaps, mut cps, mut clones, mut stopped) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..rounds {
        let name = format!("ld-{i}");
        let t = Instant::now();
        let m = st.create(&name, Some(image), Some(4 << 30))?;
        create.push(ms(t));
        mount_all(&m, mnt)?;
        write_mib(mnt, 1024, 64)?;
        let t = Instant::now();
        st.snapshot_running(&name, "s")?;
        dirty.push(ms(t));
        unmount(mnt)?;
        st.delete(&name)?;
        sync();

        let name = format!("l-{i}");
        let m = st.create(&name, Some(image), Some(4 << 30))?;
        mount_all(&m, mnt)?;
        write_mib(mnt, 1024, 64)?;
        sync();
        let t = Instant::now();
        st.snapshot_running(&name, "s")?;
        snaps.push(ms(t));
        cps.push(cp_ms(mnt, copy)?);
        unmount(mnt)?;
        let t = Instant::now();
        st.snapshot(&name, "stopped")?;
        stopped.push(ms(t));
        let t = Instant::now();
        st.clone_from(&name, "s", &format!("lc-{i}"), None)?;
        clones.push(ms(t));
    }
    for i in 0..rounds {
        st.delete(&format!("lc-{i}"))?;
        st.delete(&format!("l-{i}"))?;
    }
    let (s, c) = (median(snaps.clone()), median(cps.clone()));
    println!(
        "{backend} with a 4GiB quota: create median {:.2} ms; snapshot while mounted right after writing 1GiB (dirty): {} ms, median {:.2} ms; after sync: {} ms, median {s:.2} ms; cp -a --reflink=auto of the mounted tree: {} ms, median {c:.1} ms; ratio {:.3}; then stopped: {} ms, median {:.2} ms; clone from it: median {:.2} ms",
        median(create),
        list(&dirty),
        median(dirty.clone()),
        list(&snaps),
        list(&cps),
        s / c,
        list(&stopped),
        median(stopped.clone()),
        median(clones)
    );
    Ok(())
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}
