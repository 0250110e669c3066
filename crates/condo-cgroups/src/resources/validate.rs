//! Checks on `linux.resources` that need no cgroup: ranges, syntax, host CPUs and nodes.

use super::{DeviceRule, Resources};
use crate::error::Error;
use std::sync::OnceLock;

/// Facts about the host that some values are checked against.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    /// Online CPUs as a list ("0-1").
    pub cpus: String,
    /// Online memory nodes as a list ("0").
    pub mems: String,
    /// Supported huge page sizes in OCI spelling ("2MB", "1GB").
    pub hugepage_sizes: Vec<String>,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Spell a huge page size in kB the OCI way: 2048 → "2MB", 1048576 → "1GB".
pub(crate) fn page_size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

impl HostFacts {
    /// The facts of this host (read once per process).
    pub fn current() -> &'static HostFacts {
        static FACTS: OnceLock<HostFacts> = OnceLock::new();
        FACTS.get_or_init(|| {
            let mut sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter_map(|e| {
                            let n = e.file_name().into_string().ok()?;
                            let kb = n
                                .strip_prefix("hugepages-")?
                                .strip_suffix("kB")?
                                .parse()
                                .ok()?;
                            Some(page_size_name(kb))
                        })
                        .collect()
                })
                .unwrap_or_default();
            sizes.sort();
            HostFacts {
                cpus: read_trim("/sys/devices/system/cpu/online").unwrap_or_else(|| "0".into()),
                mems: read_trim("/sys/devices/system/node/online").unwrap_or_else(|| "0".into()),
                hugepage_sizes: sizes,
            }
        })
    }
}

/// Parse a Linux list ("0-3,5") into its members; None when malformed.
pub fn parse_list(s: &str) -> Option<Vec<u32>> {
    // No kernel has more CPUs or memory nodes than this; a longer list is not a real one, and
    // expanding it would let a config allocate without bound.
    const MAX_ENTRIES: usize = 1 << 16;
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || out.len() + (b - a) as usize >= MAX_ENTRIES {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                if out.len() >= MAX_ENTRIES {
                    return None;
                }
                out.push(part.parse().ok()?)
            }
        }
    }
    Some(out)
}

fn check_list(field: &str, value: &str, host: &str, what: &str) -> Result<(), Error> {
    let Some(want) = parse_list(value) else {
        return Err(Error::resource(
            field,
            format!("{value:?} is not a {what} list"),
        ));
    };
    let have = parse_list(host).unwrap_or_default();
    if want.iter().any(|c| !have.contains(c)) {
        let noun = if what == "CPU" {
            "CPUs"
        } else {
            "memory nodes"
        };
        return Err(Error::resource(
            field,
            format!("{value:?} names {noun} this host lacks ({host})"),
        ));
    }
    Ok(())
}

fn not_below_minus_one(field: &str, v: Option<i64>) -> Result<(), Error> {
    match v {
        Some(x) if x < -1 => Err(Error::resource(field, format!("{x} is negative"))),
        _ => Ok(()),
    }
}

fn weight(field: &str, v: Option<u16>) -> Result<(), Error> {
    match v {
        // 0 means "not set", as in runc: Docker always sends blockIO.weight, 0 by default.
        Some(w) if w != 0 && !(10..=1000).contains(&w) => {
            Err(Error::resource(field, format!("{w} out of range 10-1000")))
        }
        _ => Ok(()),
    }
}

fn dev_number(field: String, v: i64) -> Result<(), Error> {
    if v < 0 || v > u32::MAX as i64 {
        return Err(Error::resource(
            field,
            format!("{v} is not a device number"),
        ));
    }
    Ok(())
}

/// Check one device rule.
pub(crate) fn check_device(i: usize, d: &DeviceRule) -> Result<(), Error> {
    let f = |n: &str| format!("devices[{i}].{n}");
    if let Some(t) = d.kind.as_deref() {
        if !matches!(t, "a" | "b" | "c" | "") {
            return Err(Error::Invalid(format!(
                "devices[{i}].type {t:?} is not a device type"
            )));
        }
    }
    for (n, v) in [("major", d.major), ("minor", d.minor)] {
        if let Some(x) = v {
            if x < -1 || x > u32::MAX as i64 {
                return Err(Error::resource(f(n), format!("{x} is not a device number")));
            }
        }
    }
    if let Some(a) = d.access.as_deref() {
        if let Some(c) = a.chars().find(|c| !matches!(c, 'r' | 'w' | 'm')) {
            return Err(Error::resource(
                f("access"),
                format!("{a:?} holds {c:?}; only r, w and m are allowed"),
            ));
        }
    }
    Ok(())
}

impl Resources {
    /// Check every value that can be checked without a cgroup.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_with(HostFacts::current)
    }

    /// Like [`Resources::validate`] against given host facts (read only when needed).
    pub fn validate_with<'a>(&self, host: impl Fn() -> &'a HostFacts) -> Result<(), Error> {
        if let Some(m) = &self.memory {
            not_below_minus_one("memory.limit", m.limit)?;
            not_below_minus_one("memory.reservation", m.reservation)?;
            not_below_minus_one("memory.swap", m.swap)?;
            not_below_minus_one("memory.kernel", m.kernel)?;
            not_below_minus_one("memory.kernelTCP", m.kernel_tcp)?;
            if let (Some(l), Some(s)) = (m.limit, m.swap) {
                if l > 0 && s > 0 && s < l {
                    return Err(Error::resource(
                        "memory.swap",
                        format!("{s} is less than memory.limit {l} (swap counts memory plus swap)"),
                    ));
                }
            }
            if let Some(s) = m.swappiness {
                if s > 100 {
                    return Err(Error::resource(
                        "memory.swappiness",
                        format!("{s} out of range 0-100"),
                    ));
                }
            }
        }
        if let Some(c) = &self.cpu {
            match c.quota {
                Some(q) if q < -1 => {
                    return Err(Error::resource("cpu.quota", format!("{q} is negative")))
                }
                Some(q) if q > 0 && q < 1000 => {
                    return Err(Error::resource(
                        "cpu.quota",
                        format!("{q} is below the minimum 1000"),
                    ))
                }
                _ => {}
            }
            if let Some(p) = c.period {
                if p != 0 && !(1000..=1_000_000).contains(&p) {
                    return Err(Error::resource(
                        "cpu.period",
                        format!("{p} out of range 1000-1000000"),
                    ));
                }
            }
            if let (Some(b), Some(q)) = (c.burst, c.quota) {
                if q > 0 && b > q as u64 {
                    return Err(Error::resource(
                        "cpu.burst",
                        format!("{b} is above cpu.quota {q}"),
                    ));
                }
            }
            if let Some(s) = c.shares {
                if s != 0 && !(2..=262_144).contains(&s) {
                    return Err(Error::resource(
                        "cpu.shares",
                        format!("{s} out of range 2-262144"),
                    ));
                }
            }
            not_below_minus_one("cpu.realtimeRuntime", c.realtime_runtime)?;
            if let Some(i) = c.idle {
                if i != 0 && i != 1 {
                    return Err(Error::resource(
                        "cpu.idle",
                        format!("{i} is neither 0 nor 1"),
                    ));
                }
            }
            if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.trim().is_empty()) {
                check_list("cpu.cpus", cpus, &host().cpus, "CPU")?;
            }
            if let Some(mems) = c.mems.as_deref().filter(|s| !s.trim().is_empty()) {
                check_list("cpu.mems", mems, &host().mems, "memory node")?;
            }
        }
        if let Some(b) = &self.block_io {
            weight("blockIO.weight", b.weight)?;
            weight("blockIO.leafWeight", b.leaf_weight)?;
            for (i, w) in b.weight_device.iter().flatten().enumerate() {
                dev_number(format!("blockIO.weightDevice[{i}].major"), w.major)?;
                dev_number(format!("blockIO.weightDevice[{i}].minor"), w.minor)?;
                weight(&format!("blockIO.weightDevice[{i}].weight"), w.weight)?;
                weight(
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                    w.leaf_weight,
                )?;
            }
            for (name, list) in [
                ("throttleReadBpsDevice", &b.throttle_read_bps_device),
                ("throttleWriteBpsDevice", &b.throttle_write_bps_device),
                ("throttleReadIOPSDevice", &b.throttle_read_iops_device),
                ("throttleWriteIOPSDevice", &b.throttle_write_iops_device),
            ] {
                for (i, t) in list.iter().flatten().enumerate() {
                    dev_number(format!("blockIO.{name}[{i}].major"), t.major)?;
                    dev_number(format!("blockIO.{name}[{i}].minor"), t.minor)?;
                }
            }
        }
        for (i, h) in self.hugepage_limits.iter().flatten().enumerate() {
            let sizes = &host().hugepage_sizes;
            if !sizes.contains(&h.page_size) {
                return Err(Error::resource(
                    format!("hugepageLimits[{i}].pageSize"),
                    format!(
                        "{:?} is not a huge page size of this host ({})",
                        h.page_size,
                        sizes.join(", ")
                    ),
                ));
            }
        }
        if let Some(n) = &self.network {
            for (i, p) in n.priorities.iter().flatten().enumerate() {
                if p.name.is_empty() || p.name.contains(char::is_whitespace) || p.name.len() > 15 {
                    return Err(Error::resource(
                        format!("network.priorities[{i}].name"),
                        format!("{:?} is not an interface name", p.name),
                    ));
                }
            }
        }
        for k in self.rdma.iter().flat_map(|m| m.keys()) {
            if k.is_empty() || k.contains(char::is_whitespace) {
                return Err(Error::resource(
                    format!("rdma.{k:?}"),
                    "is not an RDMA device name",
                ));
            }
        }
        for k in self.unified.iter().flat_map(|m| m.keys()) {
            let ok = !k.contains('/')
                && !k.starts_with('.')
                && k.contains('.')
                && !matches!(
                    k.as_str(),
                    "cgroup.procs"
                        | "cgroup.threads"
                        | "cgroup.subtree_control"
                        | "cgroup.kill"
                        | "cgroup.type"
                );
            if !ok {
                return Err(Error::resource(
                    format!("unified.{k:?}"),
                    "is not a cgroup file Condo may write",
                ));
            }
        }
        for (i, d) in self.devices.iter().flatten().enumerate() {
            check_device(i, d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::*;

    fn host() -> HostFacts {
        HostFacts {
            cpus: "0-1".into(),
            mems: "0".into(),
            hugepage_sizes: vec!["1GB".into(), "2MB".into()],
        }
    }

    fn check(r: &Resources) -> String {
        let h = host();
        r.validate_with(|| &h).unwrap_err().to_string()
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_list("3-1").is_none());
        assert!(parse_list("x").is_none());
        // Many ranges add up: refused instead of allocating gigabytes.
        assert!(parse_list(&"0-65535,".repeat(8000)).is_none());
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1 << 20), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }

    #[test]
    fn errors_name_the_field() {
        let cpu = |c: Cpu| Resources {
            cpu: Some(c),
            ..Default::default()
        };
        assert_eq!(
            check(&cpu(Cpu {
                quota: Some(-5),
                ..Default::default()
            })),
            "linux.resources.cpu.quota: -5 is negative"
        );
        assert_eq!(
            check(&cpu(Cpu {
                cpus: Some("0-999".into()),
                ..Default::default()
            })),
            "linux.resources.cpu.cpus: \"0-999\" names CPUs this host lacks (0-1)"
        );
        let dev = Resources {
            devices: Some(vec![
                DeviceRule {
                    allow: false,
                    ..Default::default()
                },
                DeviceRule {
                    allow: true,
                    kind: Some("q".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        assert_eq!(
            check(&dev),
            "linux.resources.devices[1].type \"q\" is not a device type"
        );
        let blk = Resources {
            block_io: Some(BlockIo {
                weight: Some(5000),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            check(&blk),
            "linux.resources.blockIO.weight: 5000 out of range 10-1000"
        );
        // Docker sends weight 0 for "unset".
        let zero = Resources {
            block_io: Some(BlockIo {
                weight: Some(0),
                leaf_weight: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let h = host();
        assert!(zero.validate_with(|| &h).is_ok());
        let hp = Resources {
            hugepage_limits: Some(vec![HugepageLimit {
                page_size: "3MB".into(),
                limit: 1,
            }]),
            ..Default::default()
        };
        assert!(check(&hp).starts_with("linux.resources.hugepageLimits[0].pageSize: \"3MB\""));
        let m = Resources {
            memory: Some(Memory {
                limit: Some(100),
                swap: Some(50),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(check(&m).starts_with("linux.resources.memory.swap: 50 is less"));
        let u = Resources {
            unified: Some(
                [("../x".to_string(), "1".to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        assert!(check(&u).starts_with("linux.resources.unified.\"../x\""));
    }

    #[test]
    fn good_values_pass() {
        let r = Resources {
            cpu: Some(Cpu {
                quota: Some(-1),
                period: Some(100_000),
                cpus: Some("0-1".into()),
                mems: Some("0".into()),
                shares: Some(1024),
                ..Default::default()
            }),
            memory: Some(Memory {
                limit: Some(1 << 20),
                swap: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let h = host();
        r.validate_with(|| &h).unwrap();
    }
}
