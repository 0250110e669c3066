//! Turning an image's layers into committed snapshots, one per layer, shared between images.

use super::types::Manifest;
use super::unpack::{self, Whiteouts};
use super::{ImageError, ImageStore};
use crate::digest::Digest;
use crate::snapshot::{PrepareOptions, SnapshotError, Snapshotter};

/// The snapshot key of the layer stack ending in `layers` (a chain: each key names its parents).
pub fn chain_key(layers: &[Digest]) -> String {
    let mut id = String::new();
    for l in layers {
        id = Digest::of(format!("{id} {l}").as_bytes()).hex().to_string();
    }
    format!("layer/{id}")
}

/// Unpacks every layer of `manifest` not yet present and returns the key of the top committed
/// snapshot: the `base` for an instance. A failure leaves no partial layer behind.
pub fn unpack_image(
    images: &ImageStore,
    snap: &dyn Snapshotter,
    manifest: &Manifest,
) -> Result<Option<String>, ImageError> {
    let mut parent: Option<String> = None;
    let mut chain = Vec::new();
    for l in &manifest.layers {
        chain.push(l.digest.clone());
        let key = chain_key(&chain);
        match snap.stat(&key) {
            Ok(_) => {}
            Err(SnapshotError::NotFound(_)) => {
                unpack_layer(images, snap, &l.digest, l.size, &key, parent.as_deref())?
            }
            Err(e) => return Err(e.into()),
        }
        parent = Some(key);
    }
    Ok(parent)
}

fn unpack_layer(
    images: &ImageStore,
    snap: &dyn Snapshotter,
    digest: &Digest,
    size: u64,
    key: &str,
    parent: Option<&str>,
) -> Result<(), ImageError> {
    let tmp = format!(
        "unpack/{}/{}",
        std::process::id(),
        crate::fsutil::temp_name("l")
    );
    snap.prepare(&tmp, parent, &PrepareOptions::default())?;
    let res = (|| {
        let dir = snap.fs_path(&tmp)?;
        let mode = if snap.is_layered() {
            Whiteouts::Overlay
        } else {
            Whiteouts::Delete
        };
        let mut blob = images.content().open_verified(digest)?;
        if images.content().size(digest)? != size {
            return Err(ImageError::Malformed(format!(
                "manifest: layer {digest} size {size} does not match the blob"
            )));
        }
        unpack::apply(&mut blob, &dir, mode).map_err(|source| ImageError::Unpack {
            digest: digest.clone(),
            source,
        })?;
        // The archive may end before the blob does; reading the rest completes the digest check.
        std::io::copy(&mut blob, &mut std::io::sink()).map_err(|e| {
            match crate::content::writer_error(e) {
                Ok(c) => ImageError::Content(c),
                Err(e) => ImageError::Io {
                    what: "read",
                    path: images.content().blob_path(digest),
                    source: e,
                },
            }
        })?;
        // The committed layer must survive a crash: flush its filesystem once.
        if let Ok(f) = std::fs::File::open(&dir) {
            let _ = rustix::fs::syncfs(&f);
        }
        match snap.commit(key, &tmp) {
            Err(SnapshotError::Exists(_)) => snap.remove(&tmp).map_err(Into::into),
            r => r.map_err(Into::into),
        }
    })();
    if res.is_err() {
        let _ = snap.remove(&tmp);
    }
    res
}

/// Removes snapshots left by unpacks that were killed part way (keys `unpack/<pid>/…` of
/// processes that no longer run).
pub fn cleanup(snap: &dyn Snapshotter) -> Result<usize, ImageError> {
    let mut n = 0;
    for i in snap.walk()? {
        if let Some(rest) = i.name.strip_prefix("unpack/") {
            let pid = rest.split('/').next().and_then(|p| p.parse::<i32>().ok());
            let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                snap.remove(&i.name)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Removes layer snapshots (`layer/…`) that no recorded image (of any scope) uses and nothing
/// sits on; returns how many went. Instances keep the layers under them alive.
pub fn prune(images: &ImageStore, snap: &dyn Snapshotter) -> Result<usize, ImageError> {
    let mut keep = std::collections::HashSet::new();
    for r in images.all_records()? {
        if let Ok((_, m)) = images.manifest(&r.target) {
            let mut chain = Vec::new();
            for l in &m.layers {
                chain.push(l.digest.clone());
                keep.insert(chain_key(&chain));
            }
        }
    }
    let mut removed = 0;
    loop {
        let before = removed;
        for i in snap.walk()? {
            if i.name.starts_with("layer/") && !keep.contains(&i.name) {
                match snap.remove(&i.name) {
                    Ok(()) => removed += 1,
                    Err(SnapshotError::HasChildren(_)) | Err(SnapshotError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if removed == before {
            return Ok(removed);
        }
    }
}
