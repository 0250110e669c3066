//! Image import (OCI layout dir and tar, docker-archive), export, unpacking into snapshots,
//! and bad input.

mod common;

use common::*;
use condo_storage::content::ContentStore;
use condo_storage::image::{archive, rootfs, ImageError, ImageStore};
use condo_storage::snapshot::{OverlaySnapshotter, Snapshotter};
use std::path::Path;

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

fn store(dir: &Path) -> ImageStore {
    ImageStore::open(
        dir.join("images"),
        ContentStore::open(dir.join("content")).unwrap(),
    )
    .unwrap()
}

fn layers_with(zst: bool) -> Vec<(Vec<u8>, &'static str)> {
    let mut top = TarBuilder::new();
    top.file("etc/motd", 0o644, b"hello")
        .file("etc/.wh.os-release", 0o644, b"");
    let top = top.finish();
    let top = if zst {
        (zstd(&top), ZST)
    } else {
        (gzip(&top), GZ)
    };
    vec![(gzip(&busybox_layer()), GZ), top]
}

fn layers() -> Vec<(Vec<u8>, &'static str)> {
    layers_with(true)
}

/// Writes "example.org/test/bb:v1" as an OCI layout tar to `out`.
fn export(images: &ImageStore, out: &Path) {
    let f = std::fs::File::create(out).unwrap();
    archive::export_archive(images, &["example.org/test/bb:v1"], f).unwrap();
}

fn check_rootfs(images: &ImageStore, name: &str, work: &Path) {
    let snap = OverlaySnapshotter::open(work.join("snap")).unwrap();
    let rec = images.get(name).unwrap();
    let (_, m) = images.manifest(&rec.target).unwrap();
    let top = rootfs::unpack_image(images, &snap, &m).unwrap().unwrap();
    let mounts = snap.view("check", Some(&top)).unwrap();
    {
        let _g = MountGuard::new(&mounts, &work.join("mnt"));
        assert!(work.join("mnt/bin/busybox").is_file());
        assert_eq!(std::fs::read(work.join("mnt/etc/motd")).unwrap(), b"hello");
        assert!(
            !work.join("mnt/etc/os-release").exists(),
            "whiteout not applied"
        );
    }
    snap.remove("check").unwrap();
    let cfg = images.config(&m).unwrap();
    assert_eq!(cfg["config"]["Cmd"][0], "/bin/sh");
}

#[test]
fn import_layout_export_and_reimport() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    // gzip and uncompressed only: skopeo cannot put zstd layers in a docker-archive.
    let mut ls = layers_with(false);
    ls.push((TarBuilder::new().finish(), TAR));
    write_layout(&layout, &[("v1", ls)]);
    let images = store(tmp.path());
    let recs = archive::import_layout_dir(&images, &layout, Some("example.org/test/bb")).unwrap();
    assert_eq!(recs[0].name, "example.org/test/bb:v1");
    check_rootfs(&images, "example.org/test/bb:v1", tmp.path());

    // Export as tar, import into a fresh store: same manifest.
    let out = tmp.path().join("export.tar");
    export(&images, &out);
    let other = store(&tmp.path().join("other"));
    let recs2 = archive::import_archive(&other, std::fs::File::open(&out).unwrap(), None).unwrap();
    assert_eq!(recs2[0].name, "example.org/test/bb:v1");
    assert_eq!(recs2[0].target.digest, recs[0].target.digest);
    let dir = tmp.path().join("export-dir");
    archive::export_layout_dir(&images, &["example.org/test/bb:v1"], &dir).unwrap();
    assert!(dir.join("index.json").is_file());

    if have("skopeo") {
        let o = sh(&format!(
            "skopeo inspect --raw oci-archive:{}",
            out.display()
        ));
        assert!(o.contains("schemaVersion"), "{o}");
        // skopeo can turn our export into a docker-archive, which we import back.
        let da = tmp.path().join("docker.tar");
        sh(&format!(
            "skopeo copy -q oci-archive:{} docker-archive:{}:example.org/test/bb:v1",
            out.display(),
            da.display()
        ));
        let third = store(&tmp.path().join("third"));
        let r = archive::import_archive(&third, std::fs::File::open(&da).unwrap(), None).unwrap();
        assert_eq!(r[0].name, "example.org/test/bb:v1");
        check_rootfs(&third, "example.org/test/bb:v1", &tmp.path().join("third"));
    }
    if have("podman") {
        let o = std::process::Command::new("podman")
            .args(["load", "-i"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "podman load: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = std::process::Command::new("podman")
            .args(["rmi", "-f", "example.org/test/bb:v1"])
            .output();
    }
    // Deleting the record and collecting leaves an empty content store and no layer snapshots.
    images.delete("example.org/test/bb:v1").unwrap();
    images.gc().unwrap();
    let snap = OverlaySnapshotter::open(tmp.path().join("snap")).unwrap();
    assert_eq!(rootfs::prune(&images, &snap).unwrap(), 3);
    assert!(snap.walk().unwrap().is_empty());
    assert!(images.content().list().unwrap().is_empty());
}

fn no_residue(images: &ImageStore) {
    assert!(images.list().unwrap().is_empty(), "a record was written");
    images.gc().unwrap();
    assert!(
        images.content().list().unwrap().is_empty(),
        "blobs left behind"
    );
    assert!(
        images.content().ingests().unwrap().is_empty(),
        "ingests left behind"
    );
}

#[test]
fn bad_input_is_refused_with_nothing_left() {
    let tmp = tempfile::tempdir().unwrap();

    // A corrupt blob: the layer bytes no longer match their digest.
    let layout = tmp.path().join("corrupt");
    write_layout(&layout, &[("v1", layers())]);
    let blobs = layout.join("blobs/sha256");
    let victim = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = std::fs::read(&victim).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&victim, data).unwrap();
    let images = store(&tmp.path().join("s1"));
    let e = archive::import_layout_dir(&images, &layout, Some("x")).unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    no_residue(&images);

    // A malformed manifest.
    let layout = tmp.path().join("malformed");
    write_layout(&layout, &[("v1", layers())]);
    let bad = b"{\"schemaVersion\": 2, \"layers\": 7}";
    let bad_digest = condo_storage::Digest::of(bad);
    std::fs::write(layout.join("blobs/sha256").join(bad_digest.hex()), bad).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{bad_digest}","size":{}}}]}}"#,
        bad.len()
    );
    std::fs::write(layout.join("index.json"), index).unwrap();
    let images = store(&tmp.path().join("s2"));
    let e = archive::import_layout_dir(&images, &layout, Some("x")).unwrap_err();
    assert!(matches!(e, ImageError::Malformed(_)), "{e}");
    assert!(e.to_string().starts_with("malformed manifest"), "{e}");
    no_residue(&images);

    // An unknown layer media type.
    let layout = tmp.path().join("mediatype");
    write_layout(
        &layout,
        &[(
            "v1",
            vec![(gzip(&busybox_layer()), "application/x-strange")],
        )],
    );
    let images = store(&tmp.path().join("s3"));
    let e = archive::import_layout_dir(&images, &layout, Some("x")).unwrap_err();
    assert!(matches!(e, ImageError::MediaType(..)), "{e}");
    assert!(e.to_string().contains("application/x-strange"), "{e}");
    no_residue(&images);

    // A truncated archive.
    let layout = tmp.path().join("trunc");
    write_layout(&layout, &[("v1", layers())]);
    let tarball = tmp.path().join("trunc.tar");
    sh(&format!(
        "tar -cf {} -C {} .",
        tarball.display(),
        layout.display()
    ));
    let data = std::fs::read(&tarball).unwrap();
    let images = store(&tmp.path().join("s4"));
    let e = archive::import_archive(&images, &data[..data.len() / 2], None).unwrap_err();
    assert!(e.to_string().contains("archive"), "{e}");
    no_residue(&images);

    // Neither layout nor docker-archive.
    let mut t = TarBuilder::new();
    t.file("hello", 0o644, b"x");
    let e = archive::import_archive(&images, &t.finish()[..], None).unwrap_err();
    assert!(e.to_string().contains("neither"), "{e}");
    no_residue(&images);
}

#[test]
fn a_layer_that_fails_to_unpack_leaves_no_snapshot() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut evil = TarBuilder::new();
    evil.file("ok", 0o644, b"x").file("../escape", 0o644, b"x");
    let layout = tmp.path().join("evil");
    write_layout(
        &layout,
        &[(
            "v1",
            vec![(gzip(&busybox_layer()), GZ), (evil.finish(), TAR)],
        )],
    );
    let images = store(tmp.path());
    archive::import_layout_dir(&images, &layout, Some("evil")).unwrap();
    let snap = OverlaySnapshotter::open(tmp.path().join("snap")).unwrap();
    let (_, m) = images
        .manifest(&images.get("evil:v1").unwrap().target)
        .unwrap();
    let e = rootfs::unpack_image(&images, &snap, &m).unwrap_err();
    assert!(e.to_string().contains("\"../escape\""), "{e}");
    // The first layer is committed and shared; the failed one left nothing.
    let keys: Vec<String> = snap.walk().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("layer/"));
}

/// containerd (a private one: own root, state and socket, in its own mount and PID namespace so
/// that it dies with the script) accepts an exported image with `ctr images import`, zstd
/// layers included, and sees every blob of it.
#[test]
fn ctr_imports_an_export() {
    if !root() || !have("containerd") || !have("ctr") || !have("unshare") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_layout(&layout, &[("v1", layers())]);
    let images = store(tmp.path());
    archive::import_layout_dir(&images, &layout, Some("example.org/test/bb")).unwrap();
    let out = tmp.path().join("export.tar");
    export(&images, &out);
    let w = tmp.path().display();
    let config = format!(
        "version = 2\nroot = \"{w}/root\"\nstate = \"{w}/state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", \
         \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \
         \"io.containerd.snapshotter.v1.aufs\", \"io.containerd.internal.v1.opt\", \
         \"io.containerd.internal.v1.tracing\"]\n\
         [grpc]\n  address = \"{w}/c.sock\"\n[ttrpc]\n  address = \"{w}/c.sock.ttrpc\"\n\
         [debug]\n  address = \"{w}/d.sock\"\n[metrics]\n  address = \"\"\n"
    );
    std::fs::write(tmp.path().join("config.toml"), config).unwrap();
    let script = format!(
        "containerd --config {w}/config.toml >{w}/log 2>&1 &\n\
         for i in $(seq 100); do ctr -a {w}/c.sock version >/dev/null 2>&1 && break; sleep 0.1; done\n\
         ctr -a {w}/c.sock -n condotest images import {w}/export.tar >&2 &&\n\
         ctr -a {w}/c.sock -n condotest images check\n\
         r=$?; kill $!; wait; exit $r"
    );
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .args(["--propagation", "private", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(tmp.path().join("log")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{}\n{stdout}\n{log}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("example.org/test/bb:v1"), "{stdout}");
    assert!(stdout.contains("complete ("), "{stdout}");
}

#[test]
fn scopes_keep_their_names_apart_and_share_their_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_layout(&layout, &[("v1", layers_with(false))]);
    let images = store(tmp.path());
    let a = images.scoped("alpha").unwrap();
    let b = images.scoped("beta").unwrap();
    assert!(images.scoped("../x").is_err() && images.scoped("..").is_err());
    let name = "example.org/test/bb:v1";
    let top = archive::import_layout_dir(&images, &layout, Some("example.org/test/bb")).unwrap();
    let mine = archive::import_layout_dir(&a, &layout, Some("example.org/test/bb")).unwrap();
    assert_eq!(top[0].target.digest, mine[0].target.digest);
    // A scope sees its own names only; the top store does not see the scopes' names.
    assert_eq!(a.list().unwrap().len(), 1);
    assert!(b.list().unwrap().is_empty());
    assert!(matches!(b.get(name), Err(ImageError::NotFound(_))));
    assert_eq!(images.list().unwrap().len(), 1);
    assert_eq!(images.all_records().unwrap().len(), 2);
    // Looking up (and listing) a scope without records leaves no trace of it.
    assert!(b.list().unwrap().is_empty());
    assert_eq!(images.scopes().unwrap(), ["alpha"]);
    let blobs = images.content().list().unwrap().len();
    // Forgetting the top store's name keeps every blob the scope's name reaches, whichever
    // store collects.
    images.delete(name).unwrap();
    assert!(b.gc().unwrap().removed.is_empty());
    assert!(images.gc().unwrap().removed.is_empty());
    assert_eq!(images.content().list().unwrap().len(), blobs);
    // Once no scope names it either, the content goes.
    images.remove_scope("alpha").unwrap();
    assert_eq!(images.gc().unwrap().removed.len(), blobs);
    assert!(images.content().list().unwrap().is_empty());
}
