//! Layer unpacking: entry kinds, metadata, whiteouts, compression and escapes.

mod common;

use common::*;
use condo_storage::image::unpack::{apply, unpack_new, UnpackError, Whiteouts};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use tar::EntryType as T;

fn sample() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("./", 0o755)
        .dir("etc/", 0o755)
        .file("etc/hostname", 0o644, b"condo\n")
        .file_owned("etc/shadow", 1000, 42, b"secret")
        .link(T::Symlink, "etc/motd", "hostname")
        .link(T::Link, "etc/hostname2", "etc/hostname")
        .node(T::Fifo, "fifo", 0, 0)
        .node(T::Char, "null", 1, 3)
        .file("deep/a/b/c.txt", 0o4755, b"no parents in archive")
        .pax_file(
            "bin/ping",
            &[("security.capability", &CAP), ("user.condo", b"yes")],
            b"\x7fELF",
        );
    t.finish()
}

// A v2 file capability blob granting cap_net_raw (bit 13), permitted and effective.
const CAP: [u8; 20] = [
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn unpacks_every_kind_with_metadata() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (i, data) in [sample(), gzip(&sample()), zstd(&sample())]
        .into_iter()
        .enumerate()
    {
        let dest = tmp.path().join(format!("l{i}"));
        let stats = unpack_new(&data[..], &dest, Whiteouts::Overlay).unwrap();
        assert!(stats.entries >= 10);
        assert_eq!(
            std::fs::read(dest.join("etc/hostname")).unwrap(),
            b"condo\n"
        );
        let shadow = std::fs::metadata(dest.join("etc/shadow")).unwrap();
        assert_eq!(
            (shadow.uid(), shadow.gid(), shadow.mode() & 0o7777),
            (1000, 42, 0o640)
        );
        assert_eq!(shadow.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::read_link(dest.join("etc/motd")).unwrap().to_str(),
            Some("hostname")
        );
        let (a, b) = (
            std::fs::metadata(dest.join("etc/hostname")).unwrap(),
            std::fs::metadata(dest.join("etc/hostname2")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
        assert!(std::fs::symlink_metadata(dest.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let null = std::fs::symlink_metadata(dest.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        let c = std::fs::metadata(dest.join("deep/a/b/c.txt")).unwrap();
        assert_eq!(c.permissions().mode() & 0o7777, 0o4755);
        let cap =
            rustix::fs::getxattr(dest.join("bin/ping"), "security.capability", &mut [0u8; 64])
                .unwrap();
        assert_eq!(cap, 20);
        let mut v = [0u8; 8];
        let n = rustix::fs::getxattr(dest.join("bin/ping"), "user.condo", &mut v).unwrap();
        assert_eq!(&v[..n], b"yes");
        assert_eq!(
            std::fs::metadata(dest.join("etc")).unwrap().mtime(),
            1_600_000_000
        );
    }
}

#[test]
fn whiteouts_as_overlay_markers_or_deletions() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut l1 = TarBuilder::new();
    l1.file("a/keep", 0o644, b"1")
        .file("a/gone", 0o644, b"2")
        .file("o/old", 0o644, b"3");
    let mut l2 = TarBuilder::new();
    l2.file("a/.wh.gone", 0o644, b"")
        .file("o/.wh..wh..opq", 0o644, b"")
        .file("o/new", 0o644, b"4");
    let (l1, l2) = (l1.finish(), l2.finish());

    let ov = tmp.path().join("ov");
    unpack_new(&l2[..], &ov, Whiteouts::Overlay).unwrap();
    let wh = std::fs::symlink_metadata(ov.join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let mut v = [0u8; 4];
    let n = rustix::fs::getxattr(ov.join("o"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");

    let flat = tmp.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    apply(&l1[..], &flat, Whiteouts::Delete).unwrap();
    apply(&l2[..], &flat, Whiteouts::Delete).unwrap();
    assert_eq!(names(&flat.join("a")), vec!["keep"]);
    assert_eq!(names(&flat.join("o")), vec!["new"]);
}

fn refused(data: Vec<u8>, what: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("passwd"), b"root").unwrap();
    let dest = tmp.path().join("dest");
    let err = unpack_new(&data[..], &dest, Whiteouts::Overlay).unwrap_err();
    assert!(matches!(err, UnpackError::Escape { .. }), "{what}: {err}");
    assert!(err.to_string().contains("layer entry"), "{err}");
    assert!(!dest.exists(), "{what}: partial unpack left behind");
    assert_eq!(
        names(tmp.path()),
        vec!["outside"],
        "{what}: temp dir left behind"
    );
    assert_eq!(names(&outside), vec!["passwd"], "{what}: wrote outside");
}

#[test]
fn escapes_are_refused_and_leave_nothing() {
    let mut t = TarBuilder::new();
    t.file("ok", 0o644, b"x")
        .file("../outside/evil", 0o644, b"x");
    refused(t.finish(), "dotdot");
    let mut t = TarBuilder::new();
    t.file("/outside/evil", 0o644, b"x");
    refused(t.finish(), "absolute");
    let mut t = TarBuilder::new();
    t.link(T::Symlink, "up", "../outside")
        .file("up/evil", 0o644, b"x");
    refused(t.finish(), "relative symlink out");
    let mut t = TarBuilder::new();
    t.link(T::Symlink, "abs", "/tmp")
        .file("abs/evil", 0o644, b"x");
    refused(t.finish(), "absolute symlink");
    let mut t = TarBuilder::new();
    t.link(T::Link, "pw", "../outside/passwd");
    refused(t.finish(), "hardlink out");
    let mut t = TarBuilder::new();
    t.link(T::Symlink, "s", "../outside")
        .link(T::Link, "pw", "s/passwd");
    refused(t.finish(), "hardlink through symlink");
}

#[test]
fn truncated_or_garbage_archive_is_a_clear_error() {
    let data = gzip(&sample());
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_new(
        &data[..data.len() / 2],
        &tmp.path().join("d"),
        Whiteouts::Overlay,
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::Archive(_)), "{err}");
    let raw = sample();
    let err = unpack_new(&raw[..700], &tmp.path().join("d"), Whiteouts::Overlay).unwrap_err();
    assert!(matches!(err, UnpackError::Archive(_)), "{err}");
    assert!(common::names(tmp.path()).is_empty());
}
