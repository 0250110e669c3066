//! Image documents as a registry or an imported archive serves them: manifest, index (or
//! Docker manifest list), image config, plus the image references and digests users and
//! documents name.
//!
//! Checks: no panic, no hang; accepted manifests and indexes serialize and parse back to the
//! same thing; the platform pick returns one of the index's own entries; an accepted digest
//! is `sha256:` and 64 lowercase hex digits; an accepted reference has a sane repository.
#![no_main]

use condo_storage::digest::Digest;
use condo_storage::image::reference::Reference;
use condo_storage::image::types::{is_layer, Index, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        assert_eq!(m.schema_version, 2);
        assert!(m.layers.iter().all(|l| is_layer(&l.media_type)));
        let again = serde_json::to_vec(&m).expect("a parsed manifest serializes");
        let back = Manifest::parse(&again).expect("a serialized manifest parses again");
        assert_eq!(back.config, m.config);
        assert_eq!(back.layers, m.layers);
    }
    if let Ok(idx) = Index::parse(data) {
        if let Some(d) = idx.pick_linux_amd64() {
            assert!(idx.manifests.contains(d));
        }
        let again = serde_json::to_vec(&idx).expect("a parsed index serializes");
        let back = Index::parse(&again).expect("a serialized index parses again");
        assert_eq!(back.manifests, idx.manifests);
    }
    // The image config is kept as JSON and read field by field.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = v.pointer("/config/Env").and_then(|e| e.as_array());
        let _ = v.pointer("/rootfs/diff_ids").and_then(|e| e.as_array());
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Digest::parse(text) {
        assert_eq!(d.as_str(), text);
        assert_eq!(d.hex().len(), 64);
        assert!(d.hex().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }
    if let Ok(r) = Reference::parse(text) {
        assert!(!r.repository.is_empty());
        assert!(!r.repository.starts_with('/') && !r.repository.contains("//"));
        assert!(!r.registry.is_empty());
        let _ = r.object();
        if let Some(t) = &r.tag {
            assert!(!t.is_empty() && t.len() <= 128);
        }
    }
});
