//! Checks of config.json that need no system call, with errors naming the field.

use crate::error::{invalid, Result};
use crate::ns::{Kind, Plan};
use crate::spec::{IdMapping, Spec};

/// Checks the whole spec against itself and the namespace plan.
pub fn spec(s: &Spec, plan: &Plan) -> Result<()> {
    if !s.oci_version.is_empty() && !s.oci_version.starts_with("1.") {
        return Err(invalid(format!(
            "ociVersion \"{}\" is not a 1.x version",
            s.oci_version
        )));
    }
    let root = s.root.as_ref().ok_or_else(|| invalid("root is missing"))?;
    if root.path.is_empty() {
        return Err(invalid("root.path is empty"));
    }
    let process = s
        .process
        .as_ref()
        .ok_or_else(|| invalid("process is missing"))?;
    process_fields(process, "process", "config.json")?;
    for (i, m) in s.mounts.iter().enumerate() {
        if !m.destination.starts_with('/') {
            return Err(invalid(format!(
                "mounts[{i}].destination \"{}\" is not an absolute path",
                m.destination
            )));
        }
        if (!m.uid_mappings.is_empty() || !m.gid_mappings.is_empty())
            && (m.uid_mappings.is_empty() || m.gid_mappings.is_empty())
        {
            return Err(invalid(format!(
                "mounts[{i}]: uidMappings and gidMappings must be given together"
            )));
        }
        mappings(&m.uid_mappings, &format!("mounts[{i}].uidMappings"))?;
        mappings(&m.gid_mappings, &format!("mounts[{i}].gidMappings"))?;
        for (j, o) in m.options.iter().enumerate() {
            if crate::mountopts::parse_one(o).is_none() && !o.contains('=') && !is_fs_data(o) {
                return Err(invalid(format!(
                    "mounts[{i}].options[{j}] \"{o}\" is not a mount option"
                )));
            }
        }
    }
    if s.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !plan.has(Kind::Uts) {
        return Err(invalid(
            "hostname is set but linux.namespaces has no uts namespace",
        ));
    }
    if s.domainname.as_deref().is_some_and(|h| !h.is_empty()) && !plan.has(Kind::Uts) {
        return Err(invalid(
            "domainname is set but linux.namespaces has no uts namespace",
        ));
    }
    if let Some(h) = &s.hooks {
        let all = [
            ("prestart", &h.prestart),
            ("createRuntime", &h.create_runtime),
            ("createContainer", &h.create_container),
            ("startContainer", &h.start_container),
            ("poststart", &h.poststart),
            ("poststop", &h.poststop),
        ];
        for (name, hooks) in all {
            for (i, hk) in hooks.iter().enumerate() {
                if !hk.path.starts_with('/') {
                    return Err(invalid(format!(
                        "hooks.{name}[{i}].path \"{}\" is not an absolute path",
                        hk.path
                    )));
                }
                if hk.timeout.is_some_and(|t| t <= 0) {
                    return Err(invalid(format!(
                        "hooks.{name}[{i}].timeout must be positive"
                    )));
                }
            }
        }
    }
    let linux = s.linux();
    let user_new = plan.creates(Kind::User);
    if user_new && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty()) {
        return Err(invalid(
            "linux.uidMappings and linux.gidMappings are required with a new user namespace",
        ));
    }
    if !user_new && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
        return Err(invalid(
            "linux.uidMappings and linux.gidMappings need a new user namespace in linux.namespaces",
        ));
    }
    mappings(&linux.uid_mappings, "linux.uidMappings")?;
    mappings(&linux.gid_mappings, "linux.gidMappings")?;
    if !linux.time_offsets.is_empty() && !plan.creates(Kind::Time) {
        return Err(invalid(
            "linux.timeOffsets needs a new time namespace in linux.namespaces",
        ));
    }
    for k in linux.time_offsets.keys() {
        if k != "monotonic" && k != "boottime" {
            return Err(invalid(format!(
                "linux.timeOffsets.{k} is not a clock (monotonic or boottime)"
            )));
        }
    }
    for (i, d) in linux.devices.iter().enumerate() {
        if !matches!(d.kind.as_str(), "c" | "b" | "u" | "p") {
            return Err(invalid(format!(
                "linux.devices[{i}].type \"{}\" is not a device type (c, b, u or p)",
                d.kind
            )));
        }
        if !d.path.starts_with('/') {
            return Err(invalid(format!(
                "linux.devices[{i}].path \"{}\" is not an absolute path",
                d.path
            )));
        }
        if d.kind != "p" && (d.major < 0 || d.minor < 0) {
            return Err(invalid(format!(
                "linux.devices[{i}]: major and minor must not be negative"
            )));
        }
    }
    for (k, _) in linux.sysctl.iter() {
        sysctl_namespace(k, plan)?;
    }
    if let Some(p) = linux.rootfs_propagation.as_deref() {
        if !matches!(
            p,
            "" | "private"
                | "rprivate"
                | "shared"
                | "rshared"
                | "slave"
                | "rslave"
                | "unbindable"
                | "runbindable"
        ) {
            return Err(invalid(format!(
                "linux.rootfsPropagation \"{p}\" is not a propagation mode"
            )));
        }
    }
    for (i, p) in linux.masked_paths.iter().enumerate() {
        if !p.starts_with('/') {
            return Err(invalid(format!(
                "linux.maskedPaths[{i}] \"{p}\" is not an absolute path"
            )));
        }
    }
    for (i, p) in linux.readonly_paths.iter().enumerate() {
        if !p.starts_with('/') {
            return Err(invalid(format!(
                "linux.readonlyPaths[{i}] \"{p}\" is not an absolute path"
            )));
        }
    }
    Ok(())
}

/// Checks a process description (the container's or one for `exec`).
pub fn process_fields(p: &crate::spec::Process, field: &str, file: &'static str) -> Result<()> {
    let bad = |reason: String| crate::error::Error::Invalid { file, reason };
    if p.args.is_empty() || p.args[0].is_empty() {
        return Err(bad(format!("{field}.args must name a program")));
    }
    if !p.cwd.starts_with('/') {
        return Err(bad(format!(
            "{field}.cwd \"{}\" is not an absolute path",
            p.cwd
        )));
    }
    for (i, e) in p.env.iter().enumerate() {
        if !e.contains('=') || e.starts_with('=') {
            return Err(bad(format!("{field}.env[{i}] \"{e}\" is not KEY=value")));
        }
        if e.contains('\0') {
            return Err(bad(format!("{field}.env[{i}] contains a NUL byte")));
        }
    }
    if let Some(cs) = &p.console_size {
        if !p.terminal && (cs.height > 0 || cs.width > 0) {
            return Err(bad(format!(
                "{field}.consoleSize is set but {field}.terminal is false"
            )));
        }
    }
    if let Some(s) = p.oom_score_adj {
        if !(-1000..=1000).contains(&s) {
            return Err(bad(format!(
                "{field}.oomScoreAdj {s} is outside -1000..1000"
            )));
        }
    }
    Ok(())
}

fn is_fs_data(o: &str) -> bool {
    // Filesystem-specific flags without a value, passed through as mount data.
    matches!(
        o,
        "newinstance" | "nouuid" | "noacl" | "acl" | "user_xattr" | "nouser_xattr" | "lazytime"
    ) || o.starts_with("x-")
}

fn mappings(m: &[IdMapping], field: &str) -> Result<()> {
    for (i, a) in m.iter().enumerate() {
        if a.size == 0 {
            return Err(invalid(format!("{field}[{i}].size is 0")));
        }
        if a.container_id.checked_add(a.size).is_none() || a.host_id.checked_add(a.size).is_none() {
            return Err(invalid(format!("{field}[{i}] overflows the id range")));
        }
        for (j, b) in m.iter().enumerate().take(i) {
            let overlap = |x: u32, y: u32| x < y + b.size && y < x + a.size;
            if overlap(a.container_id, b.container_id) {
                return Err(invalid(format!(
                    "{field}[{i}] overlaps {field}[{j}] inside the container"
                )));
            }
            if overlap(a.host_id, b.host_id) {
                return Err(invalid(format!(
                    "{field}[{i}] overlaps {field}[{j}] on the host"
                )));
            }
        }
    }
    Ok(())
}

/// Which namespace a sysctl belongs to; refused when the container shares the host's.
fn sysctl_namespace(key: &str, plan: &Plan) -> Result<()> {
    if key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
        return Err(invalid(format!(
            "linux.sysctl \"{key}\" is not a sysctl name"
        )));
    }
    let k = key.replace('/', ".");
    let needed = if k.starts_with("net.") {
        Some(Kind::Network)
    } else if k.starts_with("fs.mqueue.")
        || matches!(
            k.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        )
    {
        Some(Kind::Ipc)
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        Some(Kind::Uts)
    } else {
        None
    };
    match needed {
        None => Err(invalid(format!(
            "linux.sysctl \"{key}\" is not namespaced: it would change the host"
        ))),
        Some(kind) if !plan.has(kind) => Err(invalid(format!(
            "linux.sysctl \"{key}\" needs a {} namespace: the container shares the host's",
            kind.name()
        ))),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Spec {
        serde_json::from_str(
            r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
                "process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0}},
                "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#,
        )
        .unwrap()
    }

    fn check(s: &Spec) -> Result<()> {
        let plan = Plan::from_spec(&s.linux())?;
        spec(s, &plan)
    }

    #[test]
    fn accepts_minimal() {
        check(&base()).unwrap();
    }

    #[test]
    fn names_bad_namespace() {
        let mut s = base();
        s.linux.as_mut().unwrap().namespaces[1].kind = "foo".into();
        let e = check(&s).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces[1].type \"foo\""), "{e}");
    }

    #[test]
    fn refuses_overlapping_mappings() {
        let mut s = base();
        let l = s.linux.as_mut().unwrap();
        l.namespaces.push(crate::spec::Namespace {
            kind: "user".into(),
            path: None,
        });
        l.uid_mappings = vec![
            IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 10,
            },
            IdMapping {
                container_id: 5,
                host_id: 5000,
                size: 10,
            },
        ];
        l.gid_mappings = l.uid_mappings.clone();
        let e = check(&s).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings[1] overlaps"), "{e}");
    }

    #[test]
    fn refuses_relative_destination_and_host_sysctl() {
        let mut s = base();
        s.mounts.push(crate::spec::Mount {
            destination: "tmp".into(),
            ..Default::default()
        });
        assert!(check(&s)
            .unwrap_err()
            .to_string()
            .contains("mounts[0].destination"));
        let mut s = base();
        s.linux
            .as_mut()
            .unwrap()
            .sysctl
            .insert("net.ipv4.ip_forward".into(), "1".into());
        let e = check(&s).unwrap_err().to_string();
        assert!(e.contains("needs a network namespace"), "{e}");
        let mut s = base();
        s.linux
            .as_mut()
            .unwrap()
            .sysctl
            .insert("vm.swappiness".into(), "1".into());
        assert!(check(&s)
            .unwrap_err()
            .to_string()
            .contains("not namespaced"));
    }

    #[test]
    fn refuses_missing_root_and_bad_device() {
        let mut s = base();
        s.root = None;
        assert!(check(&s)
            .unwrap_err()
            .to_string()
            .contains("root is missing"));
        let mut s = base();
        s.linux.as_mut().unwrap().devices.push(crate::spec::Device {
            kind: "x".into(),
            path: "/dev/x".into(),
            ..Default::default()
        });
        assert!(check(&s)
            .unwrap_err()
            .to_string()
            .contains("linux.devices[0].type \"x\""));
    }
}
