//! Content store: verified ingest, resume, leases and garbage collection.

use condo_storage::content::{ContentError, ContentStore};
use condo_storage::Digest;
use std::io::Write;
use std::time::Duration;

#[test]
fn ingest_verifies_digest_and_size() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(tmp.path()).unwrap();
    let d = cs.put(b"hello", None).unwrap();
    assert_eq!(cs.read(&d, 1 << 20).unwrap(), b"hello");
    let wrong = Digest::of(b"other");
    let e = cs
        .ingest("x", &b"hello"[..], Some(&wrong), None)
        .unwrap_err();
    assert!(matches!(e, ContentError::DigestMismatch { .. }), "{e}");
    let e = cs.ingest("y", &b"hello"[..], None, Some(4)).unwrap_err();
    assert!(matches!(e, ContentError::SizeMismatch { .. }), "{e}");
    assert_eq!(cs.list().unwrap(), vec![d]);
    assert!(cs.ingests().unwrap().is_empty());
}

#[test]
fn interrupted_ingest_is_invisible_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(tmp.path()).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let d = Digest::of(&data);
    {
        let mut w = cs.writer("layer-1").unwrap();
        w.write_all(&data[..40_000]).unwrap();
        // Dropped without commit, as a killed process would leave it.
    }
    assert!(!cs.exists(&d));
    assert!(cs.list().unwrap().is_empty());
    let mut w = cs.writer("layer-1").unwrap();
    assert_eq!(w.offset(), 40_000);
    w.write_all(&data[40_000..]).unwrap();
    assert_eq!(w.commit(Some(data.len() as u64), Some(&d)).unwrap(), d);
    assert!(cs.exists(&d));
    cs.verify(&d).unwrap();
}

#[test]
fn corrupt_blob_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(tmp.path()).unwrap();
    let d = cs.put(b"important bytes", None).unwrap();
    std::fs::write(cs.blob_path(&d), b"imp0rtant bytes").unwrap();
    let e = cs.verify(&d).unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(cs.read(&d, 100).is_err());
}

#[test]
fn gc_keeps_roots_their_children_and_leases() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(tmp.path()).unwrap();
    let layer = cs.put(b"layer", None).unwrap();
    let config = cs.put(b"{}", None).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"digest":"{config}","size":2}},"layers":[{{"digest":"{layer}","size":5}}]}}"#
    );
    let m = cs.put(manifest.as_bytes(), None).unwrap();
    let leased = cs.put(b"leased", None).unwrap();
    let garbage = cs.put(b"garbage", None).unwrap();
    cs.lease_create("pull-1", None).unwrap();
    cs.lease_add("pull-1", &leased).unwrap();
    let mut w = cs.writer("stale").unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    let r = cs.gc([m.clone()], Duration::ZERO).unwrap();
    assert_eq!(r.removed, vec![garbage]);
    assert_eq!(r.ingests, 1);
    for d in [&layer, &config, &m, &leased] {
        assert!(cs.exists(d));
    }
    cs.lease_delete("pull-1").unwrap();
    let r = cs.gc([m], Duration::ZERO).unwrap();
    assert_eq!(r.removed, vec![leased]);
}
