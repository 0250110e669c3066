//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

/// Builds tar archives with raw names (including hostile ones the tar crate would refuse).
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let name = &mut h.as_gnu_mut().expect("gnu header").name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        h
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Directory, mode, 0);
        self.b.append(&h, &[][..]).expect("append");
        self
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Regular, mode, data.len() as u64);
        self.b.append(&h, data).expect("append");
        self
    }

    pub fn file_owned(&mut self, path: &str, uid: u64, gid: u64, data: &[u8]) -> &mut Self {
        let mut h = Self::header(path, tar::EntryType::Regular, 0o640, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_cksum();
        self.b.append(&h, data).expect("append");
        self
    }

    pub fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(path, kind, 0o777, 0);
        let ln = &mut h.as_gnu_mut().expect("gnu").linkname;
        ln[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.b.append(&h, &[][..]).expect("append");
        self
    }

    pub fn node(&mut self, kind: tar::EntryType, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(path, kind, 0o666, 0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        h.set_cksum();
        self.b.append(&h, &[][..]).expect("append");
        self
    }

    pub fn pax_file(&mut self, path: &str, xattrs: &[(&str, &[u8])], data: &[u8]) -> &mut Self {
        let ext: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), *v)))
            .expect("pax");
        self.file(path, 0o755, data)
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish")
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).expect("zstd")
}

/// Names in a directory, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A mount made by a test, undone on drop even if the test fails.
pub struct MountGuard(pub std::path::PathBuf);

impl MountGuard {
    pub fn new(mounts: &[condo_storage::snapshot::Mount], target: &Path) -> Self {
        std::fs::create_dir_all(target).expect("mkdir target");
        condo_storage::snapshot::mount_all(mounts, target).expect("mount");
        Self(target.to_path_buf())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = condo_storage::snapshot::unmount(&self.0);
    }
}

/// A btrfs filesystem on a loop-mounted sparse image in a temp dir, removed on drop.
pub struct LoopBtrfs {
    pub dir: tempfile::TempDir,
    pub mnt: std::path::PathBuf,
}

impl LoopBtrfs {
    pub fn new(size_mib: u64) -> Option<Self> {
        if !root()
            || std::process::Command::new("mkfs.btrfs")
                .arg("--version")
                .output()
                .is_err()
        {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("btrfs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(size_mib << 20))
            .expect("image");
        let ok = std::process::Command::new("mkfs.btrfs")
            .arg("-q")
            .arg(&img)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("mkfs")
            .success();
        assert!(ok, "mkfs.btrfs failed");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "loop mount failed");
        Some(Self { dir, mnt })
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        // Anything still mounted below (test mounts) goes first.
        let _ = std::process::Command::new("umount")
            .arg("-R")
            .arg(&self.mnt)
            .status();
        let _ = self.dir.path();
    }
}

/// A layer holding busybox (static) and a few links, as an uncompressed tar.
pub fn busybox_layer() -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").unwrap_or_else(|_| b"#!/bin/false\n".to_vec());
    let mut t = TarBuilder::new();
    t.dir("bin/", 0o755).file("bin/busybox", 0o755, &bb).link(
        tar::EntryType::Symlink,
        "bin/sh",
        "busybox",
    );
    t.dir("etc/", 0o755)
        .file("etc/os-release", 0o644, b"NAME=condo-test\n");
    t.finish()
}

fn sha(data: &[u8]) -> String {
    condo_storage::Digest::of(data).hex().to_string()
}

/// Writes an OCI image layout at `dir` with one image per (tag, layers) where each layer is
/// given with its media type; returns the manifest digests.
/// Layers of one image: bytes and media type.
pub type Layers<'a> = Vec<(Vec<u8>, &'a str)>;

pub fn write_layout(dir: &Path, images: &[(&str, Layers)]) -> Vec<String> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let h = sha(data);
        std::fs::write(blobs.join(&h), data).unwrap();
        format!("sha256:{h}")
    };
    let mut manifests = Vec::new();
    let mut out = Vec::new();
    for (tag, layers) in images {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (data, mt) in layers {
            let raw = decompress_any(data);
            diff_ids.push(format!("sha256:{}", sha(&raw)));
            descs.push(
                serde_json::json!({"mediaType": mt, "digest": put(data), "size": data.len()}),
            );
        }
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        });
        let cfg = serde_json::to_vec(&config).unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(&cfg), "size": cfg.len()},
            "layers": descs
        });
        let m = serde_json::to_vec(&manifest).unwrap();
        let md = put(&m);
        out.push(md.clone());
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": m.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
            "platform": {"architecture": "amd64", "os": "linux"}
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    out
}

pub fn decompress_any(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    condo_storage::image::unpack::decompress(data)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn sh(cmd: &str) -> String {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh");
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temp dir that, when dropped, first unmounts whatever is still mounted below it (quota
/// images of snapshots, test mounts), so that a failing test leaves no mounts or loop devices.
pub struct Scratch(pub tempfile::TempDir);

impl Scratch {
    pub fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_below(self.0.path());
    }
}

/// Detaches every mount below `dir`, deepest first (what a reboot does to a store's mounts).
pub fn unmount_below(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut below: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in below {
        let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
    }
}
