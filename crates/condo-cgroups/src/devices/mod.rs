//! Device rules: v1 `devices.allow`/`devices.deny`, v2 an eBPF program per cgroup.

mod program;

pub use program::{build_program, Access, DevType};

use crate::error::Error;
use crate::fsutil::write_field;
use crate::resources::DeviceRule;
use condo_sys::bpf;
use std::os::fd::AsFd;
use std::path::Path;

fn num(v: Option<i64>) -> String {
    match v {
        Some(x) if x >= 0 => x.to_string(),
        _ => "*".to_string(),
    }
}

/// The v1 lines for one rule ("a" alone means every device with every access).
pub fn v1_lines(d: &DeviceRule) -> Vec<String> {
    let kind = d.kind.as_deref().filter(|k| !k.is_empty()).unwrap_or("a");
    let access = d
        .access
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    let (maj, min) = (num(d.major), num(d.minor));
    let full = ['r', 'w', 'm'].iter().all(|c| access.contains(*c));
    if kind == "a" {
        if maj == "*" && min == "*" && full {
            return vec!["a".to_string()];
        }
        // The kernel reads a type of "a" as "everything", so split it to keep the numbers.
        return ["b", "c"]
            .iter()
            .map(|t| format!("{t} {maj}:{min} {access}"))
            .collect();
    }
    vec![format!("{kind} {maj}:{min} {access}")]
}

/// Apply rules on v1: deny everything, then each rule in order.
pub(crate) fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), Error> {
    write_field(dir, "devices.deny", "a", "devices")?;
    for (i, d) in rules.iter().enumerate() {
        let file = if d.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        for line in v1_lines(d) {
            write_field(dir, file, &line, &format!("devices[{i}]"))?;
        }
    }
    Ok(())
}

/// Attach an eBPF program enforcing `rules` to the cgroup v2 directory `dir`, replacing
/// any earlier one (the new program goes in first, so there is no moment without rules).
pub fn apply_bpf(dir: &Path, rules: &[DeviceRule]) -> Result<(), Error> {
    let bpf_err = |source| Error::Bpf {
        path: dir.to_path_buf(),
        source,
    };
    let insns = build_program(rules)?;
    let cg = rustix::fs::open(
        dir,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io("open", dir, e.into()))?;
    let old = bpf::prog_query(cg.as_fd(), bpf::ATTACH_CGROUP_DEVICE).map_err(bpf_err)?;
    let prog = bpf::prog_load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        bpf::ATTACH_CGROUP_DEVICE,
        &insns,
        c"Apache-2.0",
    )
    .map_err(bpf_err)?;
    bpf::prog_attach(
        cg.as_fd(),
        prog.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(bpf_err)?;
    for id in old {
        // A program that vanished meanwhile is already detached.
        if let Ok(p) = bpf::prog_get_fd_by_id(id) {
            let _ = bpf::prog_detach(cg.as_fd(), p.as_fd(), bpf::ATTACH_CGROUP_DEVICE);
        }
    }
    Ok(())
}

/// Ids of the device programs attached to the cgroup v2 directory `dir`.
pub fn attached_programs(dir: &Path) -> Result<Vec<u32>, Error> {
    let cg = rustix::fs::open(
        dir,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io("open", dir, e.into()))?;
    bpf::prog_query(cg.as_fd(), bpf::ATTACH_CGROUP_DEVICE).map_err(|source| Error::Bpf {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind: Some(kind.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    #[test]
    fn v1_lines_split_typed_all() {
        assert_eq!(v1_lines(&rule(false, "a", None, None, "rwm")), vec!["a"]);
        assert_eq!(
            v1_lines(&rule(true, "c", Some(1), Some(3), "rw")),
            vec!["c 1:3 rw"]
        );
        assert_eq!(
            v1_lines(&rule(true, "c", Some(136), Some(-1), "")),
            vec!["c 136:* rwm"]
        );
        assert_eq!(
            v1_lines(&rule(true, "a", Some(1), None, "r")),
            vec!["b 1:* r", "c 1:* r"]
        );
    }
}
