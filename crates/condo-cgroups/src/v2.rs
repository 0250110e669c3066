//! Writers for the unified (v2) hierarchy.

use crate::error::Error;
use crate::fsutil::{read, read_opt, write_field, write_raw};
use crate::resources::{shares_to_weight, BlockIo, Cpu, Memory};
use std::path::Path;

/// Controllers a container may use, enabled in the ancestors' `cgroup.subtree_control`.
const WANTED: &[&str] = &[
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
];

/// Enable in every ancestor of `dir` (from the mount's root down) the controllers that the
/// root offers and a container may use. Best effort: a controller that cannot be enabled
/// shows up later as an error naming the resource that needs it.
pub(crate) fn enable_controllers(mountpoint: &Path, dir: &Path, offered: &[String]) {
    let wanted: Vec<&str> = WANTED
        .iter()
        .copied()
        .filter(|w| offered.iter().any(|o| o == w))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return;
    };
    let mut at = mountpoint.to_path_buf();
    let mut comps = rel.components().peekable();
    loop {
        let current = read(&at, "cgroup.subtree_control").unwrap_or_default();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !current.split_whitespace().any(|c| c == *w))
            .collect();
        if !missing.is_empty() {
            let all: String = missing.iter().map(|c| format!("+{c} ")).collect();
            let file = at.join("cgroup.subtree_control");
            if write_raw(&file, all.trim_end()).is_err() {
                for c in &missing {
                    let _ = write_raw(&file, &format!("+{c}"));
                }
            }
        }
        let Some(c) = comps.next() else {
            break;
        };
        if comps.peek().is_none() {
            break;
        }
        at.push(c);
        if !at.is_dir() {
            break;
        }
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// Apply `linux.resources.memory` on v2.
pub(crate) fn memory(dir: &Path, m: &Memory, warnings: &mut Vec<String>) -> Result<(), Error> {
    if let Some(r) = m.reservation {
        write_field(dir, "memory.low", &max_or(r), "memory.reservation")?;
    }
    if let Some(s) = m.swap.filter(|s| *s != 0) {
        // OCI swap is memory plus swap; v2 limits swap alone.
        let value = if s < 0 {
            "max".to_string()
        } else {
            let limit = match m.limit {
                Some(l) if l > 0 => l,
                _ => {
                    return Err(Error::resource(
                        "memory.swap",
                        "cgroup v2 needs memory.limit with a swap limit (it limits swap apart)",
                    ))
                }
            };
            (s - limit).max(0).to_string()
        };
        if read_opt(dir, "memory.swap.max")?.is_some() {
            write_field(dir, "memory.swap.max", &value, "memory.swap")?;
        } else {
            warnings.push(
                "linux.resources.memory.swap: ignored, swap accounting is off on this host".into(),
            );
        }
    }
    if let Some(l) = m.limit.filter(|l| *l != 0) {
        write_field(dir, "memory.max", &max_or(l), "memory.limit")?;
    }
    if m.swappiness.is_some() {
        warnings.push(
            "linux.resources.memory.swappiness: ignored, cgroup v2 has no per-cgroup swappiness"
                .into(),
        );
    }
    if m.disable_oom_killer == Some(true) {
        warnings.push("linux.resources.memory.disableOOMKiller: ignored, cgroup v2 cannot disable the OOM killer".into());
    }
    if m.kernel.is_some() {
        warnings.push(
            "linux.resources.memory.kernel: ignored, cgroup v2 has no kernel memory limit".into(),
        );
    }
    if m.kernel_tcp.is_some() {
        warnings.push(
            "linux.resources.memory.kernelTCP: ignored, cgroup v2 has no TCP memory limit".into(),
        );
    }
    Ok(())
}

/// Apply the cpu controller part of `linux.resources.cpu` on v2.
pub(crate) fn cpu(dir: &Path, c: &Cpu) -> Result<(), Error> {
    if let Some(s) = c.shares.filter(|s| *s != 0) {
        write_field(
            dir,
            "cpu.weight",
            &shares_to_weight(s).to_string(),
            "cpu.shares",
        )?;
    }
    let quota = c.quota.filter(|q| *q != 0);
    let period = c.period.filter(|p| *p != 0);
    let value = match (quota, period) {
        (Some(q), Some(p)) => Some(format!("{} {p}", max_or(q))),
        (Some(q), None) => Some(max_or(q)),
        (None, Some(p)) => {
            let current = read(dir, "cpu.max")?;
            let q = current
                .split_whitespace()
                .next()
                .unwrap_or("max")
                .to_string();
            Some(format!("{q} {p}"))
        }
        (None, None) => None,
    };
    if let Some(v) = value {
        let field = if quota.is_some() {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        write_field(dir, "cpu.max", &v, field)?;
    }
    if let Some(b) = c.burst {
        write_field(dir, "cpu.max.burst", &b.to_string(), "cpu.burst")?;
    }
    if let Some(i) = c.idle {
        write_field(dir, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    Ok(())
}

/// The v2 file for block IO weights: BFQ's (same scale as OCI) or io.weight (1-10000).
pub(crate) fn io_weight_file(dir: &Path) -> Option<&'static str> {
    ["io.bfq.weight", "io.weight"]
        .into_iter()
        .find(|f| rustix::fs::access(dir.join(f), rustix::fs::Access::EXISTS).is_ok())
}

fn scale_weight(file: &str, w: u16) -> u64 {
    if file == "io.weight" {
        // OCI weights are 10-1000; io.weight is 1-10000.
        1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
    } else {
        u64::from(w)
    }
}

/// Apply `linux.resources.blockIO` on v2.
pub(crate) fn io(dir: &Path, b: &BlockIo, warnings: &mut Vec<String>) -> Result<(), Error> {
    let wfile = io_weight_file(dir);
    // A weight of 0 is unset (runc's reading; Docker sends 0 by default).
    if let Some(w) = b.weight.filter(|&w| w != 0) {
        let f = wfile.ok_or_else(|| crate::v1::no_weight("blockIO.weight"))?;
        write_field(
            dir,
            f,
            &format!("default {}", scale_weight(f, w)),
            "blockIO.weight",
        )?;
    }
    if b.leaf_weight.is_some_and(|w| w != 0) {
        warnings.push(
            "linux.resources.blockIO.leafWeight: ignored, cgroup v2 has no leaf weights".into(),
        );
    }
    for (i, d) in b.weight_device.iter().flatten().enumerate() {
        if let Some(w) = d.weight.filter(|&w| w != 0) {
            let field = format!("blockIO.weightDevice[{i}].weight");
            let f = wfile.ok_or_else(|| crate::v1::no_weight(&field))?;
            let v = format!("{}:{} {}", d.major, d.minor, scale_weight(f, w));
            write_field(dir, f, &v, &field)?;
        }
    }
    for (name, key, list) in [
        ("throttleReadBpsDevice", "rbps", &b.throttle_read_bps_device),
        (
            "throttleWriteBpsDevice",
            "wbps",
            &b.throttle_write_bps_device,
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            &b.throttle_read_iops_device,
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            &b.throttle_write_iops_device,
        ),
    ] {
        for (i, t) in list.iter().flatten().enumerate() {
            let rate = if t.rate == 0 {
                "max".to_string()
            } else {
                t.rate.to_string()
            };
            let v = format!("{}:{} {key}={rate}", t.major, t.minor);
            write_field(dir, "io.max", &v, &format!("blockIO.{name}[{i}]"))?;
        }
    }
    Ok(())
}

/// Current usage of a v2 memory cgroup, for `checkBeforeUpdate`.
pub(crate) fn memory_usage(dir: &Path) -> Result<u64, Error> {
    let s = read(dir, "memory.current")?;
    crate::fsutil::parse_u64(&dir.join("memory.current"), &s)
}
