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
