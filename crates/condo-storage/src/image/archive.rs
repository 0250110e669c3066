//! OCI image layouts (directory or tar) and docker-archives (`docker save`): import and export.

use super::types::{
    self, Descriptor, Index, Manifest, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
};
use super::{ioe, ImageError, ImageRecord, ImageStore, MAX_DOC};
use crate::content::ContentStore;
use crate::digest::Digest;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where an import finds blobs by digest.
trait Blobs {
    fn ingest(&self, cs: &ContentStore, d: &Descriptor) -> Result<(), ImageError>;
}

struct DirBlobs<'a>(&'a Path);

impl Blobs for DirBlobs<'_> {
    fn ingest(&self, cs: &ContentStore, d: &Descriptor) -> Result<(), ImageError> {
        let p = self.0.join("blobs/sha256").join(d.digest.hex());
        let f = std::fs::File::open(&p).map_err(ioe("open", &p))?;
        cs.ingest(
            &format!("import-{}", d.digest),
            f,
            Some(&d.digest),
            Some(d.size),
        )?;
        Ok(())
    }
}

/// Blobs already ingested while streaming a tar; only their presence and size are checked.
struct StoredBlobs;

impl Blobs for StoredBlobs {
    fn ingest(&self, cs: &ContentStore, d: &Descriptor) -> Result<(), ImageError> {
        let size = cs
            .size(&d.digest)
            .map_err(|_| ImageError::Archive(format!("archive lacks blob {}", d.digest)))?;
        if size != d.size {
            return Err(ImageError::Archive(format!(
                "blob {} is {size} bytes, descriptor says {}",
                d.digest, d.size
            )));
        }
        Ok(())
    }
}

/// Copies a descriptor's whole tree (index → manifests → config and layers) into the store.
fn ingest_tree(
    images: &ImageStore,
    src: &dyn Blobs,
    d: &Descriptor,
    lease: &str,
) -> Result<(), ImageError> {
    let cs = images.content();
    src.ingest(cs, d)?;
    cs.lease_add(lease, &d.digest)?;
    if types::is_index(&d.media_type) {
        let idx = Index::parse(&cs.read(&d.digest, MAX_DOC)?)?;
        // Only the platform Condo runs is needed; others may be absent from the layout.
        let m = idx
            .pick_linux_amd64()
            .ok_or_else(|| ImageError::NoPlatform(d.digest.clone()))?;
        return ingest_tree(images, src, m, lease);
    }
    if !types::is_manifest(&d.media_type) {
        return Err(ImageError::MediaType(
            d.media_type.clone(),
            d.digest.clone(),
        ));
    }
    let m = Manifest::parse(&cs.read(&d.digest, MAX_DOC)?)?;
    for c in std::iter::once(&m.config).chain(&m.layers) {
        src.ingest(cs, c)?;
        cs.lease_add(lease, &c.digest)?;
    }
    Ok(())
}

fn record_names(d: &Descriptor, fallback: Option<&str>) -> Option<String> {
    d.annotations
        .get(CONTAINERD_NAME)
        .cloned()
        .or_else(|| {
            d.annotations.get(REF_NAME).map(|t| match fallback {
                Some(f) if !t.contains('/') && !t.contains(':') => format!("{f}:{t}"),
                _ => t.clone(),
            })
        })
        .or_else(|| fallback.map(Into::into))
}

fn import_index(
    images: &ImageStore,
    src: &dyn Blobs,
    index: &[u8],
    name: Option<&str>,
    lease: &str,
) -> Result<Vec<ImageRecord>, ImageError> {
    let idx = Index::parse(index)?;
    let mut staged = Vec::new();
    for d in &idx.manifests {
        ingest_tree(images, src, d, lease)?;
        let n = record_names(d, name).ok_or_else(|| {
            ImageError::Archive(format!("manifest {} has no name; give one", d.digest))
        })?;
        staged.push((n, d.clone()));
    }
    // Records only once every blob of every image is in: a failure leaves no half image.
    staged
        .into_iter()
        .map(|(n, mut d)| {
            d.annotations.clear();
            images.put(&n, d)
        })
        .collect()
}

fn with_lease<T>(
    images: &ImageStore,
    f: impl FnOnce(&str) -> Result<T, ImageError>,
) -> Result<T, ImageError> {
    let lease = format!(
        "import-{}-{}",
        std::process::id(),
        crate::fsutil::temp_name("l").trim_start_matches('.')
    );
    // A killed import's lease expires after a day; its blobs are kept for a retry until then.
    images.content().lease_create(&lease, Some(24 * 3600))?;
    let r = f(&lease);
    let _ = images.content().lease_delete(&lease);
    r
}

/// Imports an OCI image layout directory; `name` names images whose descriptors carry none.
pub fn import_layout_dir(
    images: &ImageStore,
    dir: &Path,
    name: Option<&str>,
) -> Result<Vec<ImageRecord>, ImageError> {
    let lp = dir.join("oci-layout");
    let layout = std::fs::read(&lp).map_err(ioe("read", &lp))?;
    check_layout(&layout)?;
    let ip = dir.join("index.json");
    let index = std::fs::read(&ip).map_err(ioe("read", &ip))?;
    with_lease(images, |lease| {
        import_index(images, &DirBlobs(dir), &index, name, lease)
    })
}

fn check_layout(data: &[u8]) -> Result<(), ImageError> {
    let v: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| ImageError::Malformed(format!("oci-layout: {e}")))?;
    match v.get("imageLayoutVersion").and_then(|x| x.as_str()) {
        Some("1.0.0") => Ok(()),
        other => Err(ImageError::Malformed(format!(
            "oci-layout: imageLayoutVersion {other:?} (expected \"1.0.0\")"
        ))),
    }
}

/// Imports a tar stream holding an OCI image layout or a docker-archive (`docker save`).
pub fn import_archive(
    images: &ImageStore,
    r: impl Read + Send,
    name: Option<&str>,
) -> Result<Vec<ImageRecord>, ImageError> {
    with_lease(images, |lease| {
        let cs = images.content();
        let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
        let mut paths: HashMap<String, Digest> = HashMap::new();
        let mut ar = tar::Archive::new(
            super::unpack::decompress(r)
                .map_err(|e| ImageError::Archive(format!("reading archive: {e}")))?,
        );
        let aerr = |e: std::io::Error| ImageError::Archive(format!("reading archive: {e}"));
        for e in ar.entries().map_err(aerr)? {
            let mut e = e.map_err(aerr)?;
            if !e.header().entry_type().is_file() {
                continue;
            }
            let path = String::from_utf8_lossy(&e.path_bytes())
                .trim_start_matches("./")
                .to_string();
            if matches!(
                path.as_str(),
                "index.json" | "oci-layout" | "manifest.json" | "repositories"
            ) {
                let mut v = Vec::new();
                e.by_ref().take(MAX_DOC).read_to_end(&mut v).map_err(aerr)?;
                docs.insert(path, v);
                continue;
            }
            // Blob files name their digest; anything else (docker-archive layers) is hashed.
            let expected = path
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok());
            let size = e.header().size().map_err(aerr)?;
            let d = cs
                .ingest(
                    &format!("import-{lease}-{path}"),
                    &mut e,
                    expected.as_ref(),
                    Some(size),
                )
                .map_err(|err| match err {
                    crate::content::ContentError::Io { source, .. } => aerr(source),
                    crate::content::ContentError::SizeMismatch {
                        expected, actual, ..
                    } => ImageError::Archive(format!(
                        "reading archive: truncated at {path:?} ({actual} of {expected} bytes)"
                    )),
                    other => other.into(),
                })?;
            cs.lease_add(lease, &d)?;
            paths.insert(path, d);
        }
        if let Some(index) = docs.get("index.json") {
            if let Some(l) = docs.get("oci-layout") {
                check_layout(l)?;
            }
            return import_index(images, &StoredBlobs, index, name, lease);
        }
        let Some(manifest) = docs.get("manifest.json") else {
            return Err(ImageError::Archive(
                "archive holds neither index.json (OCI layout) nor manifest.json (docker-archive)"
                    .into(),
            ));
        };
        import_docker(images, manifest, &paths, name)
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker(
    images: &ImageStore,
    manifest: &[u8],
    paths: &HashMap<String, Digest>,
    name: Option<&str>,
) -> Result<Vec<ImageRecord>, ImageError> {
    let cs = images.content();
    let entries: Vec<DockerEntry> = serde_json::from_slice(manifest)
        .map_err(|e| ImageError::Malformed(format!("docker-archive manifest.json: {e}")))?;
    let desc = |p: &str, mt: &str| -> Result<Descriptor, ImageError> {
        let d = paths
            .get(p)
            .ok_or_else(|| ImageError::Archive(format!("docker-archive lacks {p:?}")))?;
        Ok(Descriptor {
            media_type: mt.into(),
            digest: d.clone(),
            size: cs.size(d)?,
            platform: None,
            annotations: BTreeMap::new(),
        })
    };
    let mut staged = Vec::new();
    for e in &entries {
        let config = desc(&e.config, OCI_CONFIG)?;
        let layers = e
            .layers
            .iter()
            .map(|l| desc(l, OCI_LAYER))
            .collect::<Result<Vec<_>, _>>()?;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config,
            layers,
        };
        let data = serde_json::to_vec(&m).map_err(|e| ImageError::Malformed(e.to_string()))?;
        let d = cs.put(&data, None)?;
        let target = Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: d,
            size: data.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let tags = e.repo_tags.clone().unwrap_or_default();
        let tags = if tags.is_empty() {
            name.map(|n| vec![n.to_string()]).unwrap_or_default()
        } else {
            tags
        };
        if tags.is_empty() {
            return Err(ImageError::Archive(format!(
                "docker-archive image {:?} has no RepoTags; give a name",
                e.config
            )));
        }
        for t in tags {
            staged.push((t, target.clone()));
        }
    }
    staged.into_iter().map(|(n, d)| images.put(&n, d)).collect()
}

fn layout_parts(
    images: &ImageStore,
    names: &[&str],
) -> Result<(Vec<u8>, Vec<Descriptor>), ImageError> {
    let cs = images.content();
    let mut manifests = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    for n in names {
        let rec = images.get(n)?;
        let (md, m) = images.manifest(&rec.target)?;
        let mut d = md.clone();
        d.annotations
            .insert(CONTAINERD_NAME.into(), rec.name.clone());
        let tag = rec
            .name
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map(|(_, t)| t.to_string())
            .unwrap_or_else(|| "latest".into());
        d.annotations.insert(REF_NAME.into(), tag);
        manifests.push(d);
        for b in std::iter::once(&md)
            .chain(std::iter::once(&m.config))
            .chain(&m.layers)
        {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                cs.size(&b.digest)?;
                blobs.push(b.clone());
            }
        }
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests,
    };
    let data =
        serde_json::to_vec_pretty(&index).map_err(|e| ImageError::Malformed(e.to_string()))?;
    Ok((data, blobs))
}

const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes images as an OCI image layout directory (which must not exist).
pub fn export_layout_dir(
    images: &ImageStore,
    names: &[&str],
    dir: &Path,
) -> Result<(), ImageError> {
    let (index, blobs) = layout_parts(images, names)?;
    let tmp = dir.with_extension(crate::fsutil::temp_name("export").trim_start_matches('.'));
    let res = (|| {
        let b = tmp.join("blobs/sha256");
        std::fs::create_dir_all(&b).map_err(ioe("create", &b))?;
        for d in &blobs {
            let dst = b.join(d.digest.hex());
            std::fs::copy(images.content().blob_path(&d.digest), &dst)
                .map_err(ioe("copy", &dst))?;
        }
        std::fs::write(tmp.join("oci-layout"), LAYOUT).map_err(ioe("write", &tmp))?;
        std::fs::write(tmp.join("index.json"), &index).map_err(ioe("write", &tmp))?;
        std::fs::rename(&tmp, dir).map_err(ioe("rename", dir))
    })();
    if res.is_err() {
        let _ = crate::fsutil::remove_all(&tmp);
    }
    res
}

/// Streams images as an OCI image layout tar (what `podman load`, `skopeo` and `ctr images import` read).
pub fn export_archive(
    images: &ImageStore,
    names: &[&str],
    w: impl Write,
) -> Result<(), ImageError> {
    let (index, blobs) = layout_parts(images, names)?;
    let werr = |e: std::io::Error| ImageError::Archive(format!("writing archive: {e}"));
    let mut b = tar::Builder::new(w);
    let add = |b: &mut tar::Builder<_>, path: &str, size: u64, r: &mut dyn Read| {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, r).map_err(werr)
    };
    let dir = |b: &mut tar::Builder<_>, path: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).map_err(werr)
    };
    add(&mut b, "oci-layout", LAYOUT.len() as u64, &mut &LAYOUT[..])?;
    dir(&mut b, "blobs/")?;
    dir(&mut b, "blobs/sha256/")?;
    for d in &blobs {
        let mut f = images.content().open_verified(&d.digest)?;
        add(
            &mut b,
            &format!("blobs/sha256/{}", d.digest.hex()),
            d.size,
            &mut f,
        )?;
    }
    add(&mut b, "index.json", index.len() as u64, &mut &index[..])?;
    b.into_inner().map_err(werr)?.flush().map_err(werr)
}
