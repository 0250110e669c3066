//! Resource usage in the shape of runc's `events --stats` "data" object.

use crate::error::Error;
use crate::fsutil::{flat_keyed, keyed, read_opt, read_u64};
use crate::resources::{parse_list, HostFacts};
use crate::Cgroup;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

fn zero(v: &u64) -> bool {
    *v == 0
}

/// Everything `events --stats` reports.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: CpuStats,
    /// cpuset placement.
    pub cpuset: CpusetStats,
    /// Memory use.
    pub memory: MemoryStats,
    /// Process count.
    pub pids: PidsStats,
    /// Block IO.
    pub blkio: BlkioStats,
    /// Huge page use per page size ("2MB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
    /// Intel RDT (not collected; always empty).
    pub intel_rdt: BTreeMap<String, serde_json::Value>,
    /// Network interfaces (not collected here; null).
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

/// CPU usage in nanoseconds.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct CpuUsage {
    /// Total.
    #[serde(default, skip_serializing_if = "zero")]
    pub total: u64,
    /// Per CPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU in kernel mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU in user mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In kernel mode.
    #[serde(default)]
    pub kernel: u64,
    /// In user mode.
    #[serde(default)]
    pub user: u64,
}

/// CFS throttling counters.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Periods elapsed.
    #[serde(default, skip_serializing_if = "zero")]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(default, skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Time throttled, ns.
    #[serde(default, skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// `cpu` of the stats.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct CpuStats {
    /// Usage.
    pub usage: CpuUsage,
    /// Throttling.
    pub throttling: Throttling,
}

/// `cpuset` of the stats.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct CpusetStats {
    /// Effective CPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// cpuset.cpu_exclusive.
    #[serde(default)]
    pub cpu_exclusive: u64,
    /// Effective memory nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// cpuset.mem_hardwall.
    #[serde(default)]
    pub mem_hardwall: u64,
    /// cpuset.mem_exclusive.
    #[serde(default)]
    pub mem_exclusive: u64,
    /// cpuset.memory_migrate.
    #[serde(default)]
    pub memory_migrate: u64,
    /// cpuset.memory_spread_page.
    #[serde(default)]
    pub memory_spread_page: u64,
    /// cpuset.memory_spread_slab.
    #[serde(default)]
    pub memory_spread_slab: u64,
    /// cpuset.memory_pressure.
    #[serde(default)]
    pub memory_pressure: u64,
    /// cpuset.sched_load_balance.
    #[serde(default)]
    pub sched_load_balance: u64,
    /// cpuset.sched_relax_domain_level.
    #[serde(default)]
    pub sched_relax_domain_level: i64,
}

/// Usage, peak, limit and failure count of one memory counter.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct MemoryEntry {
    /// Limit (u64::MAX when unlimited).
    #[serde(default)]
    pub limit: u64,
    /// Usage.
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// `memory` of the stats.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// Page cache.
    #[serde(default, skip_serializing_if = "zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap.
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every key of memory.stat.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// `pids` of the stats.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct PidsStats {
    /// Tasks now.
    #[serde(default, skip_serializing_if = "zero")]
    pub current: u64,
    /// Limit (0 when unlimited).
    #[serde(default, skip_serializing_if = "zero")]
    pub limit: u64,
}

/// One block IO counter.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(default, skip_serializing_if = "zero")]
    pub major: u64,
    /// Device minor.
    #[serde(default, skip_serializing_if = "zero")]
    pub minor: u64,
    /// "Read", "Write", "Sync", "Async", "Discard" or "Total".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// Value.
    #[serde(default, skip_serializing_if = "zero")]
    pub value: u64,
}

/// `blkio` of the stats.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlkioStats {
    /// Bytes transferred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Huge page use of one size.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct HugetlbStats {
    /// Bytes in use.
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    /// Peak bytes (v1).
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

fn u(dir: &Path, name: &str) -> Result<u64, Error> {
    Ok(read_u64(dir, name)?.unwrap_or(0))
}

fn list_u64(dir: &Path, name: &str) -> Result<Vec<u64>, Error> {
    Ok(read_opt(dir, name)?
        .map(|s| {
            s.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default())
}

fn list_u16(dir: &Path, name: &str) -> Result<Vec<u16>, Error> {
    Ok(read_opt(dir, name)?
        .and_then(|s| parse_list(&s))
        .map(|v| {
            v.into_iter()
                .filter_map(|x| u16::try_from(x).ok())
                .collect()
        })
        .unwrap_or_default())
}

fn entry_v1(dir: &Path, prefix: &str) -> Result<MemoryEntry, Error> {
    Ok(MemoryEntry {
        limit: u(dir, &format!("{prefix}.limit_in_bytes"))?,
        usage: u(dir, &format!("{prefix}.usage_in_bytes"))?,
        max: u(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: u(dir, &format!("{prefix}.failcnt"))?,
    })
}

fn blkio_v1(dir: &Path, name: &str) -> Result<Vec<BlkioEntry>, Error> {
    let cfq = format!("blkio.{name}");
    let file = if dir.join(&cfq).exists() {
        cfq
    } else {
        format!("blkio.throttle.{name}")
    };
    let mut out = Vec::new();
    for line in read_opt(dir, &file)?.unwrap_or_default().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let Some((ma, mi)) = f[0].split_once(':') else {
            continue;
        };
        out.push(BlkioEntry {
            major: ma.parse().unwrap_or(0),
            minor: mi.parse().unwrap_or(0),
            op: f[1].to_string(),
            value: f[2].parse().unwrap_or(0),
        });
    }
    Ok(out)
}

fn io_v2(dir: &Path, stats: &mut BlkioStats) -> Result<(), Error> {
    for line in read_opt(dir, "io.stat")?.unwrap_or_default().lines() {
        let mut it = line.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (major, minor) = (ma.parse().unwrap_or(0), mi.parse().unwrap_or(0));
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let value = v.parse().unwrap_or(0);
            let (list, op) = match k {
                "rbytes" => (&mut stats.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut stats.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut stats.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut stats.io_serviced_recursive, "Read"),
                "wios" => (&mut stats.io_serviced_recursive, "Write"),
                "dios" => (&mut stats.io_serviced_recursive, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    Ok(())
}

impl Cgroup {
    /// Read the cgroup's resource usage.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        if let Some(dir) = self.v1_dir("cpuacct") {
            let u = &mut s.cpu.usage;
            u.total = read_u64(dir, "cpuacct.usage")?.unwrap_or(0);
            u.percpu = list_u64(dir, "cpuacct.usage_percpu")?;
            u.percpu_kernel = list_u64(dir, "cpuacct.usage_percpu_sys")?;
            u.percpu_user = list_u64(dir, "cpuacct.usage_percpu_user")?;
            // cpuacct.stat counts USER_HZ (100 Hz) ticks.
            let st = read_opt(dir, "cpuacct.stat")?.unwrap_or_default();
            u.user = keyed(&st, "user").unwrap_or(0) * 10_000_000;
            u.kernel = keyed(&st, "system").unwrap_or(0) * 10_000_000;
        }
        match self.controller("cpu") {
            Some((1, dir)) => {
                let st = read_opt(dir, "cpu.stat")?.unwrap_or_default();
                s.cpu.throttling = Throttling {
                    periods: keyed(&st, "nr_periods").unwrap_or(0),
                    throttled_periods: keyed(&st, "nr_throttled").unwrap_or(0),
                    throttled_time: keyed(&st, "throttled_time").unwrap_or(0),
                };
            }
            _ => {
                if let Some(dir) = self
                    .unified_dir()
                    .filter(|_| self.v1_dir("cpuacct").is_none())
                {
                    let st = read_opt(dir, "cpu.stat")?.unwrap_or_default();
                    let us = |k| keyed(&st, k).unwrap_or(0) * 1000;
                    s.cpu.usage.total = us("usage_usec");
                    s.cpu.usage.user = us("user_usec");
                    s.cpu.usage.kernel = us("system_usec");
                    s.cpu.throttling = Throttling {
                        periods: keyed(&st, "nr_periods").unwrap_or(0),
                        throttled_periods: keyed(&st, "nr_throttled").unwrap_or(0),
                        throttled_time: us("throttled_usec"),
                    };
                }
            }
        }
        if let Some((v, dir)) = self.controller("cpuset") {
            let c = &mut s.cpuset;
            c.cpus = list_u16(dir, "cpuset.effective_cpus")?;
            c.mems = list_u16(dir, "cpuset.effective_mems")?;
            if v == 1 {
                c.cpu_exclusive = u(dir, "cpuset.cpu_exclusive")?;
                c.mem_hardwall = u(dir, "cpuset.mem_hardwall")?;
                c.mem_exclusive = u(dir, "cpuset.mem_exclusive")?;
                c.memory_migrate = u(dir, "cpuset.memory_migrate")?;
                c.memory_spread_page = u(dir, "cpuset.memory_spread_page")?;
                c.memory_spread_slab = u(dir, "cpuset.memory_spread_slab")?;
                c.memory_pressure = u(dir, "cpuset.memory_pressure")?;
                c.sched_load_balance = u(dir, "cpuset.sched_load_balance")?;
                c.sched_relax_domain_level = read_opt(dir, "cpuset.sched_relax_domain_level")?
                    .and_then(|x| x.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
        match self.controller("memory") {
            Some((1, dir)) => {
                let m = &mut s.memory;
                m.raw = flat_keyed(&read_opt(dir, "memory.stat")?.unwrap_or_default())
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                m.cache = m.raw.get("cache").copied().unwrap_or(0);
                m.usage = entry_v1(dir, "memory")?;
                m.swap = entry_v1(dir, "memory.memsw")?;
                m.kernel = entry_v1(dir, "memory.kmem")?;
                m.kernel_tcp = entry_v1(dir, "memory.kmem.tcp")?;
            }
            Some((_, dir)) => {
                let m = &mut s.memory;
                m.raw = flat_keyed(&read_opt(dir, "memory.stat")?.unwrap_or_default())
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                m.cache = m.raw.get("file").copied().unwrap_or(0);
                let events = read_opt(dir, "memory.events")?.unwrap_or_default();
                m.usage = MemoryEntry {
                    limit: u(dir, "memory.max")?,
                    usage: u(dir, "memory.current")?,
                    max: u(dir, "memory.peak")?,
                    failcnt: keyed(&events, "max").unwrap_or(0),
                };
                if let Some(swap) = read_u64(dir, "memory.swap.current")? {
                    // Reported as memory plus swap, like v1's memsw.
                    m.swap = MemoryEntry {
                        limit: u(dir, "memory.swap.max")?.saturating_add(m.usage.limit),
                        usage: swap + m.usage.usage,
                        max: 0,
                        failcnt: 0,
                    };
                }
            }
            None => {}
        }
        if let Some((_, dir)) = self.controller("pids") {
            s.pids.current = u(dir, "pids.current")?;
            let limit = u(dir, "pids.max")?;
            s.pids.limit = if limit == u64::MAX { 0 } else { limit };
        }
        if let Some(dir) = self.v1_dir("blkio") {
            s.blkio.io_service_bytes_recursive = blkio_v1(dir, "io_service_bytes_recursive")?;
            s.blkio.io_serviced_recursive = blkio_v1(dir, "io_serviced_recursive")?;
        } else if let Some((_, dir)) = self.controller("io") {
            io_v2(dir, &mut s.blkio)?;
        }
        if let Some((v, dir)) = self.controller("hugetlb") {
            for size in &HostFacts::current().hugepage_sizes {
                let h = if v == 1 {
                    HugetlbStats {
                        usage: u(dir, &format!("hugetlb.{size}.usage_in_bytes"))?,
                        max: u(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                        failcnt: u(dir, &format!("hugetlb.{size}.failcnt"))?,
                    }
                } else {
                    let ev = read_opt(dir, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
                    HugetlbStats {
                        usage: u(dir, &format!("hugetlb.{size}.current"))?,
                        max: 0,
                        failcnt: keyed(&ev, "max").unwrap_or(0),
                    }
                };
                s.hugetlb.insert(size.clone(), h);
            }
        }
        Ok(s)
    }
}
