//! Which cgroup layout the host has, and where each hierarchy is mounted.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The cgroup layout of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies, one per controller (or group of controllers).
    V1,
    /// One unified cgroup2 hierarchy at /sys/fs/cgroup.
    V2,
    /// v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified.
    Hybrid,
}

const CGROUP2_MAGIC: i64 = 0x6367_7270;
const CGROUP_MAGIC: i64 = 0x0027_e0eb;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Where the cgroup filesystems are expected.
pub(crate) const ROOT: &str = "/sys/fs/cgroup";

#[allow(clippy::unnecessary_cast)] // f_type is not i64 on every target
fn fs_type(path: &str) -> Option<i64> {
    rustix::fs::statfs(path).ok().map(|s| s.f_type as i64)
}

/// Detect the host's cgroup layout from the filesystem types under /sys/fs/cgroup.
pub fn detect() -> Result<Mode, Error> {
    match fs_type(ROOT) {
        Some(CGROUP2_MAGIC) => Ok(Mode::V2),
        Some(TMPFS_MAGIC) | Some(CGROUP_MAGIC) => {
            if fs_type("/sys/fs/cgroup/unified") == Some(CGROUP2_MAGIC) {
                Ok(Mode::Hybrid)
            } else {
                Ok(Mode::V1)
            }
        }
        _ => Err(Error::NotMounted),
    }
}

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug)]
pub(crate) struct Mount {
    /// 1 or 2.
    pub version: u8,
    /// v1: controllers and `name=` of the hierarchy; v2: controllers its root offers.
    pub controllers: Vec<String>,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The cgroup path that the mount's root shows (usually "/").
    pub root: String,
}

/// The host's layout, read once per process.
#[derive(Debug)]
pub(crate) struct Layout {
    pub mode: Mode,
    pub mounts: Vec<Mount>,
}

const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

static LAYOUT: OnceLock<Result<Layout, String>> = OnceLock::new();

/// The layout of this host (cached after the first call).
pub(crate) fn layout() -> Result<&'static Layout, Error> {
    match LAYOUT.get_or_init(|| discover().map_err(|e| e.to_string())) {
        Ok(l) => Ok(l),
        Err(e) => Err(Error::io(
            "discover",
            ROOT,
            std::io::Error::other(e.clone()),
        )),
    }
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse /proc/self/mountinfo content into cgroup mounts (deduplicated per hierarchy).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut mounts: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post_it = post.split_whitespace();
        let fstype = post_it.next().unwrap_or("");
        let version = match fstype {
            "cgroup" => 1,
            "cgroup2" => 2,
            _ => continue,
        };
        let _source = post_it.next();
        let superopts = post_it.next().unwrap_or("");
        let f: Vec<&str> = pre.split_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let dev = f[2].to_string();
        let root = unescape(f[3]);
        let mountpoint = PathBuf::from(unescape(f[4]));
        let controllers: Vec<String> = if version == 1 {
            superopts
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        let m = Mount {
            version,
            controllers,
            mountpoint,
            root,
        };
        let preferred = m.mountpoint.starts_with(ROOT);
        if let Some((_, idx)) = seen.iter().find(|(d, _)| *d == dev) {
            if preferred && !mounts[*idx].mountpoint.starts_with(ROOT) {
                mounts[*idx] = m;
            }
            continue;
        }
        seen.push((dev, mounts.len()));
        mounts.push(m);
    }
    mounts
}

fn discover() -> Result<Layout, Error> {
    let mode = detect()?;
    let text = crate::fsutil::read_path(Path::new("/proc/self/mountinfo"))?;
    let unified_at = match mode {
        Mode::V2 => Some(PathBuf::from(ROOT)),
        Mode::Hybrid => Some(PathBuf::from("/sys/fs/cgroup/unified")),
        Mode::V1 => None,
    };
    let mut mounts: Vec<Mount> = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| match m.version {
            1 => mode != Mode::V2 && !m.controllers.is_empty(),
            _ => Some(&m.mountpoint) == unified_at.as_ref(),
        })
        .collect();
    for m in mounts.iter_mut().filter(|m| m.version == 2) {
        let s = crate::fsutil::read(&m.mountpoint, "cgroup.controllers").unwrap_or_default();
        m.controllers = s.split_whitespace().map(str::to_string).collect();
    }
    if mounts.is_empty() {
        return Err(Error::NotMounted);
    }
    Ok(Layout { mode, mounts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
99 31 0:29 /x /mnt/cpu\\040dir rw - cgroup cgroup rw,cpu\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].controllers, vec!["cpu"]);
        assert_eq!(m[1].controllers, vec!["name=systemd"]);
        assert_eq!(m[2].version, 2);
        assert_eq!(unescape("/mnt/cpu\\040dir"), "/mnt/cpu dir");
    }
}
