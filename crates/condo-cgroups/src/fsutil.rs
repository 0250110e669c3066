//! Small, allocation-light helpers for cgroupfs files.

use crate::error::Error;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Write `value` to the file `dir/name` in one `write(2)`, as cgroupfs expects.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Write a resource value, naming the resource field on failure.
pub(crate) fn write_field(dir: &Path, name: &str, value: &str, field: &str) -> Result<(), Error> {
    let path = dir.join(name);
    write_raw(&path, value).map_err(|source| Error::Apply {
        field: field.to_string(),
        path,
        value: value.to_string(),
        source,
    })
}

/// Write a control value (not a resource), e.g. `cgroup.procs`.
pub(crate) fn write_ctl(dir: &Path, name: &str, value: &str) -> Result<(), Error> {
    let path = dir.join(name);
    write_raw(&path, value).map_err(|e| Error::io("write", path, e))
}

/// Read the whole of `dir/name`.
pub(crate) fn read(dir: &Path, name: &str) -> Result<String, Error> {
    let path = dir.join(name);
    read_path(&path)
}

/// Read the whole of `path`.
pub(crate) fn read_path(path: &Path) -> Result<String, Error> {
    let mut s = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|e| Error::io("read", path, e))?;
    Ok(s)
}

/// Read `dir/name` if it exists.
pub(crate) fn read_opt(dir: &Path, name: &str) -> Result<Option<String>, Error> {
    let path = dir.join(name);
    let mut s = String::new();
    match std::fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut s)) {
        Ok(_) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Read a single unsigned number ("max" reads as `u64::MAX`); missing file → None.
pub(crate) fn read_u64(dir: &Path, name: &str) -> Result<Option<u64>, Error> {
    match read_opt(dir, name)? {
        None => Ok(None),
        Some(s) => parse_u64(&dir.join(name), &s).map(Some),
    }
}

/// Parse one number, "max" meaning `u64::MAX`; negative (v1 "-1") also means unlimited.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64, Error> {
    let t = s.trim();
    if t == "max" || t.starts_with('-') {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        content: t.to_string(),
    })
}

/// Parse "key value" lines into pairs (values that are not numbers are skipped).
pub(crate) fn flat_keyed(s: &str) -> impl Iterator<Item = (&str, u64)> {
    s.lines().filter_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?;
        let v = it.next()?.parse().ok()?;
        Some((k, v))
    })
}

/// Look up one key of a flat-keyed file's content.
pub(crate) fn keyed(s: &str, key: &str) -> Option<u64> {
    flat_keyed(s).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Subdirectories of `dir` (child cgroups).
pub(crate) fn children(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    }
}
