//! Image layers as a registry or `image import` hands them over: a tar stream, maybe gzip or
//! zstd, unpacked the two ways Condo unpacks layers:
//! - `unpack_new` with overlay whiteouts into a fresh directory (a snapshot's lower dir);
//! - `apply` with whiteouts as deletions onto an existing tree (flattening).
//!
//! Checks: no panic, no hang; nothing outside the target is created, changed, linked to or
//! removed. Everything lives under one fixed directory, `$TMPDIR/condo-fuzz-layer`:
//!
//! ```text
//! condo-fuzz-layer/
//!   marker/file        a file no layer may change, link to or remove
//!   work/              the targets are made (and removed) here
//! ```
//!
//! The path is fixed so that seeds can aim symlinks and hard links at the marker by absolute
//! path as well as by `../`.
#![no_main]

use condo_storage::image::unpack::{self, Whiteouts};
use libfuzzer_sys::fuzz_target;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MARKER_TEXT: &[u8] = b"outside every layer\n";

struct Dirs {
    base: PathBuf,
    marker: PathBuf,
    work: PathBuf,
}

fn dirs() -> &'static Dirs {
    static D: OnceLock<Dirs> = OnceLock::new();
    D.get_or_init(|| {
        let base = std::env::temp_dir().join("condo-fuzz-layer");
        let _ = fs::remove_dir_all(&base);
        let marker = base.join("marker");
        let work = base.join("work");
        fs::create_dir_all(&marker).unwrap();
        fs::create_dir_all(&work).unwrap();
        fs::write(marker.join("file"), MARKER_TEXT).unwrap();
        Dirs { base, marker, work }
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} is gone: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Panics when anything outside `work/` differs from the starting state.
fn check_outside(d: &Dirs, input: &str) {
    assert_eq!(
        names(&d.base),
        ["marker", "work"],
        "{input}: a layer created or removed something beside the target"
    );
    assert_eq!(
        names(&d.marker),
        ["file"],
        "{input}: a layer reached into a directory outside the target"
    );
    let f = d.marker.join("file");
    let meta = fs::symlink_metadata(&f).expect("marker file is gone");
    assert!(meta.is_file(), "{input}: marker file replaced");
    assert_eq!(meta.nlink(), 1, "{input}: a layer hard-linked a file outside the target");
    assert_eq!(meta.mode() & 0o7777, 0o644, "{input}: marker file mode changed");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{input}: marker file owner changed");
    assert_eq!(fs::read(&f).unwrap(), MARKER_TEXT, "{input}: marker file written");
    // The parent of the base must not gain a sibling the fuzzer could aim at with "../..".
}

fn clear(dir: &Path) {
    for n in names(dir) {
        let p = dir.join(n);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                // Layers may leave read-only or immutable-free but odd modes; root removes anyway.
                fs::remove_dir_all(&p).unwrap_or_else(|e| panic!("cannot clean {}: {e}", p.display()))
            }
            Ok(_) => fs::remove_file(&p).unwrap(),
            Err(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let d = dirs();
    // umask matters for the marker's mode check only; set once by the first write.

    // 1. A fresh overlay lower dir.
    let dest = d.work.join("layer");
    let _ = unpack::unpack_new(data, &dest, Whiteouts::Overlay);
    check_outside(d, "unpack_new(Overlay)");
    clear(&d.work);

    // 2. Flattening onto a tree that already holds files and a directory.
    let tree = d.work.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), b"base\n").unwrap();
    fs::write(tree.join("file"), b"base\n").unwrap();
    let _ = unpack::apply(data, &tree, Whiteouts::Delete);
    check_outside(d, "apply(Delete)");
    clear(&d.work);

    // 3. The decompressor alone on whatever it sniffs (truncated and corrupt streams).
    if let Ok(mut r) = unpack::decompress(data) {
        let mut sink = [0u8; 64 << 10];
        let mut total = 0usize;
        // Bounded: a decompression bomb is the decompressor's nature, not a finding here.
        while total < (16 << 20) {
            match std::io::Read::read(&mut r, &mut sink) {
                Ok(0) | Err(_) => break,
                Ok(k) => total += k,
            }
        }
    }
});
