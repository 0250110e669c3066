//! Writers for cgroup v1 controllers.

use crate::error::Error;
use crate::fsutil::{read, write_ctl, write_field};
use crate::resources::{BlockIo, Cpu, Memory, Network};
use std::path::Path;

/// Give a new cpuset cgroup its parent's cpus and mems (filling empty ancestors first);
/// without them no task could enter it.
pub(crate) fn cpuset_inherit(dir: &Path) -> Result<(), Error> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut v = read(parent, file)?;
        if v.trim().is_empty() {
            cpuset_inherit(parent)?;
            v = read(parent, file)?;
        }
        write_ctl(dir, file, v.trim())?;
    }
    Ok(())
}

fn limit_value(v: i64) -> String {
    if v < 0 {
        "-1".to_string()
    } else {
        v.to_string()
    }
}

fn exists(dir: &Path, name: &str) -> bool {
    rustix::fs::access(dir.join(name), rustix::fs::Access::EXISTS).is_ok()
}

/// Apply `linux.resources.memory` to a v1 memory cgroup.
pub(crate) fn memory(dir: &Path, m: &Memory, warnings: &mut Vec<String>) -> Result<(), Error> {
    if let Some(r) = m.reservation {
        write_field(
            dir,
            "memory.soft_limit_in_bytes",
            &limit_value(r),
            "memory.reservation",
        )?;
    }
    let has_memsw = m.swap.is_some() && exists(dir, "memory.memsw.limit_in_bytes");
    if m.swap.is_some() && !has_memsw {
        warnings.push(
            "linux.resources.memory.swap: ignored, swap accounting is off on this host".into(),
        );
    }
    match (m.limit, m.swap.filter(|_| has_memsw)) {
        (Some(l), Some(s)) => {
            // The kernel keeps memory.limit <= memsw.limit at every step, so the order of the
            // two writes depends on whether the limits grow or shrink.
            let (l, s) = (limit_value(l), limit_value(s));
            if write_field(dir, "memory.memsw.limit_in_bytes", &s, "memory.swap").is_err() {
                write_field(dir, "memory.limit_in_bytes", &l, "memory.limit")?;
                write_field(dir, "memory.memsw.limit_in_bytes", &s, "memory.swap")?;
            } else {
                write_field(dir, "memory.limit_in_bytes", &l, "memory.limit")?;
            }
        }
        (Some(l), None) => write_field(
            dir,
            "memory.limit_in_bytes",
            &limit_value(l),
            "memory.limit",
        )?,
        (None, Some(s)) => write_field(
            dir,
            "memory.memsw.limit_in_bytes",
            &limit_value(s),
            "memory.swap",
        )?,
        (None, None) => {}
    }
    if let Some(s) = m.swappiness {
        write_field(
            dir,
            "memory.swappiness",
            &s.to_string(),
            "memory.swappiness",
        )?;
    }
    if let Some(d) = m.disable_oom_killer {
        write_field(
            dir,
            "memory.oom_control",
            if d { "1" } else { "0" },
            "memory.disableOOMKiller",
        )?;
    }
    if m.kernel.is_some() {
        warnings.push(
            "linux.resources.memory.kernel: ignored, this kernel has no kernel memory limit".into(),
        );
    }
    if let Some(k) = m.kernel_tcp {
        if exists(dir, "memory.kmem.tcp.limit_in_bytes") {
            write_field(
                dir,
                "memory.kmem.tcp.limit_in_bytes",
                &limit_value(k),
                "memory.kernelTCP",
            )?;
        } else {
            warnings.push(
                "linux.resources.memory.kernelTCP: ignored, this kernel has no TCP memory limit"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Apply the cpu controller part of `linux.resources.cpu` on v1.
pub(crate) fn cpu(dir: &Path, c: &Cpu) -> Result<(), Error> {
    if let Some(s) = c.shares.filter(|s| *s != 0) {
        write_field(dir, "cpu.shares", &s.to_string(), "cpu.shares")?;
    }
    let period = c.period.filter(|p| *p != 0).map(|p| p.to_string());
    let quota = c.quota.filter(|q| *q != 0).map(limit_value);
    match (period, quota) {
        (Some(p), Some(q)) => {
            // A period change can be refused under the old quota (and the reverse), so
            // retry in the other order.
            if write_field(dir, "cpu.cfs_period_us", &p, "cpu.period").is_err() {
                write_field(dir, "cpu.cfs_quota_us", &q, "cpu.quota")?;
                write_field(dir, "cpu.cfs_period_us", &p, "cpu.period")?;
            } else {
                write_field(dir, "cpu.cfs_quota_us", &q, "cpu.quota")?;
            }
        }
        (Some(p), None) => write_field(dir, "cpu.cfs_period_us", &p, "cpu.period")?,
        (None, Some(q)) => write_field(dir, "cpu.cfs_quota_us", &q, "cpu.quota")?,
        (None, None) => {}
    }
    if let Some(b) = c.burst {
        write_field(dir, "cpu.cfs_burst_us", &b.to_string(), "cpu.burst")?;
    }
    if let Some(p) = c.realtime_period.filter(|p| *p != 0) {
        write_field(
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
            "cpu.realtimePeriod",
        )?;
    }
    if let Some(r) = c.realtime_runtime.filter(|r| *r != 0) {
        write_field(
            dir,
            "cpu.rt_runtime_us",
            &r.to_string(),
            "cpu.realtimeRuntime",
        )?;
    }
    if let Some(i) = c.idle {
        write_field(dir, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    Ok(())
}

/// The v1 file for the default block IO weight, if the kernel offers one.
pub(crate) fn blkio_weight_file(dir: &Path) -> Option<&'static str> {
    ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| exists(dir, f))
}

/// Apply `linux.resources.blockIO` to a v1 blkio cgroup.
pub(crate) fn blkio(dir: &Path, b: &BlockIo, warnings: &mut Vec<String>) -> Result<(), Error> {
    let wfile = blkio_weight_file(dir);
    // A weight of 0 is unset (runc's reading; Docker sends 0 by default).
    if let Some(w) = b.weight.filter(|&w| w != 0) {
        let f = wfile.ok_or_else(|| no_weight("blockIO.weight"))?;
        write_field(dir, f, &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = b.leaf_weight.filter(|&w| w != 0) {
        if exists(dir, "blkio.leaf_weight") {
            write_field(
                dir,
                "blkio.leaf_weight",
                &w.to_string(),
                "blockIO.leafWeight",
            )?;
        } else {
            warnings.push(
                "linux.resources.blockIO.leafWeight: ignored, this kernel has no leaf weights"
                    .into(),
            );
        }
    }
    for (i, d) in b.weight_device.iter().flatten().enumerate() {
        if let Some(w) = d.weight.filter(|&w| w != 0) {
            let field = format!("blockIO.weightDevice[{i}].weight");
            let f = wfile.ok_or_else(|| no_weight(&field))?;
            let f = format!("{f}_device");
            write_field(dir, &f, &format!("{}:{} {w}", d.major, d.minor), &field)?;
        }
        if d.leaf_weight.is_some_and(|w| w != 0) {
            warnings.push(format!(
                "linux.resources.blockIO.weightDevice[{i}].leafWeight: ignored, this kernel has no leaf weights"
            ));
        }
    }
    for (name, file, list) in [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        ),
    ] {
        for (i, t) in list.iter().flatten().enumerate() {
            let v = format!("{}:{} {}", t.major, t.minor, t.rate);
            write_field(dir, file, &v, &format!("blockIO.{name}[{i}]"))?;
        }
    }
    Ok(())
}

pub(crate) fn no_weight(field: &str) -> Error {
    Error::resource(
        field,
        "this kernel offers no block IO weight (the BFQ scheduler is not in use)",
    )
}

/// Apply `linux.resources.network` (net_cls and net_prio must be mounted; checked before).
pub(crate) fn network(cls: Option<&Path>, prio: Option<&Path>, n: &Network) -> Result<(), Error> {
    if let (Some(id), Some(dir)) = (n.class_id, cls) {
        write_field(dir, "net_cls.classid", &id.to_string(), "network.classID")?;
    }
    if let Some(dir) = prio {
        for (i, p) in n.priorities.iter().flatten().enumerate() {
            let v = format!("{} {}", p.name, p.priority);
            write_field(
                dir,
                "net_prio.ifpriomap",
                &v,
                &format!("network.priorities[{i}]"),
            )?;
        }
    }
    Ok(())
}

/// Current usage of a v1 memory cgroup, for `checkBeforeUpdate`.
pub(crate) fn memory_usage(dir: &Path) -> Result<u64, Error> {
    let s = read(dir, "memory.usage_in_bytes")?;
    crate::fsutil::parse_u64(&dir.join("memory.usage_in_bytes"), &s)
}
