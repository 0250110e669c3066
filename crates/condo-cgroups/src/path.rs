//! cgroupsPath semantics: default, absolute, relative to our own cgroup, systemd form.

use crate::error::Error;
use std::path::Path;

/// Parent of containers whose config names no cgroupsPath.
pub const DEFAULT_PARENT: &str = "/condo";

/// A cgroupsPath after parsing, before it is placed in each hierarchy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Spec {
    /// Starts at the root of every hierarchy.
    Absolute(String),
    /// Below the cgroup this process is in, per hierarchy.
    Relative(String),
}

fn clean(original: &str, p: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(p.len() + 1);
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(Error::Path {
                    path: original.to_string(),
                    reason: "\"..\" is not allowed".into(),
                })
            }
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Path {
            path: original.to_string(),
            reason: "names the root cgroup".into(),
        });
    }
    Ok(out)
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(Error::Path {
            path: String::new(),
            reason: format!("container id {id:?} cannot name a cgroup"),
        });
    }
    Ok(())
}

/// Whether `p` has the systemd `slice:prefix:name` shape.
pub(crate) fn is_systemd_form(p: &str) -> bool {
    !p.starts_with('/') && !p.contains('/') && p.matches(':').count() == 2
}

/// Whether systemd manages this host (the same test as `sd_booted`).
pub(crate) fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Expand a systemd slice name into its cgroup path: `a-b.slice` → `/a.slice/a-b.slice`.
pub(crate) fn expand_slice(original: &str, slice: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Path {
        path: original.to_string(),
        reason: format!("slice {slice:?} {why}"),
    };
    if slice == "-.slice" {
        return Ok(String::new());
    }
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(bad("does not end in .slice"));
    };
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(bad("is not a valid slice name"));
    }
    let mut out = String::new();
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push('/');
        out.push_str(&acc);
        out.push_str(".slice");
    }
    Ok(out)
}

/// Parse a cgroupsPath the way runc does (see the crate docs).
pub(crate) fn parse(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Spec, Error> {
    check_id(id)?;
    let p = cgroups_path.unwrap_or("").trim();
    if systemd || is_systemd_form(p) {
        if !systemd_running() {
            return Err(Error::SystemdAbsent(p.to_string()));
        }
        // With systemd present, place the scope where systemd would, through cgroupfs.
        let (slice, prefix, name) = if p.is_empty() {
            ("system.slice", "condo", id)
        } else {
            let mut it = p.splitn(3, ':');
            let (a, b, c) = (it.next(), it.next(), it.next());
            match (a, b, c) {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => {
                    return Err(Error::Path {
                        path: p.to_string(),
                        reason: "expected slice:prefix:name".into(),
                    })
                }
            }
        };
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        let name = if name.is_empty() { id } else { name };
        let unit = if name.ends_with(".slice") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        let full = format!("{}/{unit}", expand_slice(p, slice)?);
        return clean(p, &full).map(Spec::Absolute);
    }
    if p.is_empty() {
        return Ok(Spec::Absolute(format!("{DEFAULT_PARENT}/{id}")));
    }
    if p.contains('\0') {
        return Err(Error::Path {
            path: p.to_string(),
            reason: "contains a NUL byte".into(),
        });
    }
    if p.starts_with('/') {
        clean(p, p).map(Spec::Absolute)
    } else {
        clean(p, p).map(Spec::Relative)
    }
}

/// The cgroup path of this process in the hierarchy holding `controllers` (v1) or the
/// unified one (`controllers` empty), read from /proc/self/cgroup content.
pub(crate) fn own_cgroup<'a>(
    proc_cgroup: &'a str,
    version: u8,
    controllers: &[String],
) -> Option<&'a str> {
    for line in proc_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if version == 2 {
            if id == "0" && ctrls.is_empty() {
                return Some(path);
            }
            continue;
        }
        if ctrls.is_empty() {
            continue;
        }
        let mut n = 0;
        let mut all = true;
        for c in ctrls.split(',') {
            n += 1;
            all &= controllers.iter().any(|x| x == c);
        }
        if all && n == controllers.len() {
            return Some(path);
        }
    }
    None
}

/// Join a mount point with a cgroup path, taking away the mount's own root.
pub(crate) fn host_dir(mountpoint: &Path, mount_root: &str, cgroup: &str) -> std::path::PathBuf {
    let rel = if mount_root != "/" {
        cgroup.strip_prefix(mount_root).unwrap_or(cgroup)
    } else {
        cgroup
    };
    mountpoint.join(rel.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_absolute_relative() {
        assert_eq!(
            parse(None, "abc", false).unwrap(),
            Spec::Absolute("/condo/abc".into())
        );
        assert_eq!(
            parse(Some(""), "abc", false).unwrap(),
            Spec::Absolute("/condo/abc".into())
        );
        assert_eq!(
            parse(Some("/a//b/./c/"), "abc", false).unwrap(),
            Spec::Absolute("/a/b/c".into())
        );
        assert_eq!(
            parse(Some("x/y"), "abc", false).unwrap(),
            Spec::Relative("/x/y".into())
        );
        assert!(parse(Some("/a/../b"), "abc", false).is_err());
        assert!(parse(Some("/"), "abc", false).is_err());
        assert!(parse(None, "a/b", false).is_err());
    }

    #[test]
    fn systemd_form_needs_systemd() {
        if systemd_running() {
            assert_eq!(
                parse(Some("machine-x.slice:condo:abc"), "abc", true).unwrap(),
                Spec::Absolute("/machine.slice/machine-x.slice/condo-abc.scope".into())
            );
        } else {
            let e = parse(Some("system.slice:condo:abc"), "abc", true).unwrap_err();
            assert!(e.to_string().contains("systemd is not running"), "{e}");
            let e = parse(Some("system.slice:condo:abc"), "abc", false).unwrap_err();
            assert!(e.to_string().contains("systemd is not running"), "{e}");
        }
    }

    #[test]
    fn slices_expand() {
        assert_eq!(
            expand_slice("", "a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("", "-.slice").unwrap(), "");
        assert!(expand_slice("", "a--b.slice").is_err());
        assert!(expand_slice("", "nope").is_err());
    }

    #[test]
    fn own_cgroup_lookup() {
        let pc = "9:name=systemd:/s\n4:memory:/m/x\n2:cpu,cpuacct:/c\n0::/u\n";
        assert_eq!(own_cgroup(pc, 1, &["memory".into()]), Some("/m/x"));
        assert_eq!(
            own_cgroup(pc, 1, &["cpu".into(), "cpuacct".into()]),
            Some("/c")
        );
        assert_eq!(own_cgroup(pc, 1, &["name=systemd".into()]), Some("/s"));
        assert_eq!(own_cgroup(pc, 2, &[]), Some("/u"));
        assert_eq!(own_cgroup(pc, 1, &["cpu".into()]), None);
    }

    #[test]
    fn host_dirs() {
        assert_eq!(
            host_dir(Path::new("/sys/fs/cgroup/memory"), "/", "/a/b"),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            host_dir(Path::new("/sys/fs/cgroup"), "/docker/x", "/docker/x/a"),
            Path::new("/sys/fs/cgroup/a")
        );
    }
}
