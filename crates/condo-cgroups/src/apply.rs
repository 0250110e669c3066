//! Applying and updating `linux.resources`: checks against this cgroup first, then writes.

use crate::error::Error;
use crate::fsutil::write_field;
use crate::resources::Resources;
use crate::{devices, v1, v2, Cgroup, Mode};
use std::path::Path;

fn need<'a>(
    cg: &'a Cgroup,
    controller: &'static str,
    field: &str,
) -> Result<(u8, &'a Path), Error> {
    cg.controller(controller).ok_or_else(|| {
        Error::resource(
            field,
            format!("the {controller} controller is not available on this host"),
        )
    })
}

impl Cgroup {
    /// Validate `r`, then write it to this (created) cgroup.
    pub fn apply(&self, r: &Resources) -> Result<(), Error> {
        self.apply_with_warnings(r).map(|_| ())
    }

    /// Like [`Cgroup::apply`], returning what was accepted but ignored on this host.
    pub fn apply_with_warnings(&self, r: &Resources) -> Result<Vec<String>, Error> {
        r.validate()?;
        self.precheck(r)?;
        self.write_all(r)
    }

    /// Change the limits of a live cgroup; only the fields present change.
    pub fn update(&self, r: &Resources) -> Result<(), Error> {
        self.update_with_warnings(r).map(|_| ())
    }

    /// Like [`Cgroup::update`], returning what was accepted but ignored on this host.
    pub fn update_with_warnings(&self, r: &Resources) -> Result<Vec<String>, Error> {
        r.validate()?;
        self.precheck(r)?;
        if let Some(m) = &r.memory {
            if let (Some(true), Some(limit)) = (m.check_before_update, m.limit.filter(|l| *l > 0)) {
                let (v, dir) = need(self, "memory", "memory.limit")?;
                let usage = if v == 1 {
                    v1::memory_usage(dir)?
                } else {
                    v2::memory_usage(dir)?
                };
                if (limit as u64) < usage {
                    return Err(Error::resource(
                        "memory.limit",
                        format!("{limit} is below the current usage {usage} (checkBeforeUpdate)"),
                    ));
                }
            }
        }
        self.write_all(r)
    }

    /// Everything that depends on this host and cgroup, checked before anything is written.
    fn precheck(&self, r: &Resources) -> Result<(), Error> {
        let needs_unified = r.hugepage_limits.as_ref().is_some_and(|h| !h.is_empty())
            || r.unified.as_ref().is_some_and(|u| !u.is_empty());
        if self.mode() == Mode::Hybrid && needs_unified {
            if let Some(h) = self.hierarchies().iter().find(|h| h.version == 2) {
                crate::v2::enable_controllers(&h.mountpoint, &h.dir, &h.controllers);
            }
        }
        if r.memory.is_some() {
            need(self, "memory", "memory")?;
        }
        if let Some(c) = &r.cpu {
            let uses_cpu = c.shares.is_some()
                || c.quota.is_some()
                || c.period.is_some()
                || c.burst.is_some()
                || c.idle.is_some()
                || c.realtime_period.is_some()
                || c.realtime_runtime.is_some();
            if uses_cpu {
                let (v, _) = need(self, "cpu", "cpu")?;
                if v == 2 && c.realtime_runtime.unwrap_or(0) != 0 {
                    return Err(Error::resource(
                        "cpu.realtimeRuntime",
                        "cgroup v2 has no realtime limits",
                    ));
                }
                if v == 2 && c.realtime_period.unwrap_or(0) != 0 {
                    return Err(Error::resource(
                        "cpu.realtimePeriod",
                        "cgroup v2 has no realtime limits",
                    ));
                }
            }
            if c.cpus.as_deref().is_some_and(|s| !s.is_empty()) {
                need(self, "cpuset", "cpu.cpus")?;
            }
            if c.mems.as_deref().is_some_and(|s| !s.is_empty()) {
                need(self, "cpuset", "cpu.mems")?;
            }
        }
        if r.pids.as_ref().is_some_and(|p| p.limit.is_some()) {
            need(self, "pids", "pids.limit")?;
        }
        if let Some(b) = &r.block_io {
            let ctl = if self.v1_dir("blkio").is_some() {
                "blkio"
            } else {
                "io"
            };
            let (v, dir) = need(self, ctl, "blockIO")?;
            let wants_weight =
                b.weight.is_some() || b.weight_device.iter().flatten().any(|d| d.weight.is_some());
            let has_weight = if v == 1 {
                v1::blkio_weight_file(dir).is_some()
            } else {
                v2::io_weight_file(dir).is_some()
            };
            if wants_weight && !has_weight {
                return Err(v1::no_weight(if b.weight.is_some() {
                    "blockIO.weight"
                } else {
                    "blockIO.weightDevice"
                }));
            }
        }
        if r.hugepage_limits.as_ref().is_some_and(|h| !h.is_empty()) {
            need(self, "hugetlb", "hugepageLimits")?;
        }
        if let Some(n) = &r.network {
            if n.class_id.is_some() && self.v1_dir("net_cls").is_none() {
                return Err(Error::resource(
                    "network.classID",
                    "net_cls is not mounted on this host",
                ));
            }
            if n.priorities.as_ref().is_some_and(|p| !p.is_empty())
                && self.v1_dir("net_prio").is_none()
            {
                return Err(Error::resource(
                    "network.priorities",
                    "net_prio is not mounted on this host",
                ));
            }
        }
        if r.rdma.as_ref().is_some_and(|m| !m.is_empty()) {
            need(self, "rdma", "rdma")?;
        }
        if r.devices.is_some() && self.v1_dir("devices").is_none() && self.unified_dir().is_none() {
            return Err(Error::resource(
                "devices",
                "no devices controller and no cgroup v2 on this host",
            ));
        }
        for key in r.unified.iter().flat_map(|m| m.keys()) {
            let field = format!("unified.{key:?}");
            let Some(dir) = self.unified_dir() else {
                return Err(Error::resource(
                    field,
                    "this host has no cgroup v2 hierarchy",
                ));
            };
            let ctl = key.split('.').next().unwrap_or("");
            if self.mode() == Mode::Hybrid
                && ctl != "cgroup"
                && self.controller(ctl).map(|c| c.0) != Some(2)
            {
                return Err(Error::resource(
                    field,
                    format!(
                        "the {ctl} controller is not in the unified hierarchy of this hybrid host"
                    ),
                ));
            }
            if !dir.join(key).exists() {
                return Err(Error::resource(
                    field,
                    format!("{} has no such file", dir.display()),
                ));
            }
        }
        Ok(())
    }

    fn write_all(&self, r: &Resources) -> Result<Vec<String>, Error> {
        let mut warnings = Vec::new();
        if let Some(c) = &r.cpu {
            if let Some((_, dir)) = self.controller("cpuset") {
                // mems before cpus is the kernel-friendly order when both move.
                if let Some(m) = c.mems.as_deref().filter(|s| !s.is_empty()) {
                    write_field(dir, "cpuset.mems", m, "cpu.mems")?;
                }
                if let Some(s) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
                    write_field(dir, "cpuset.cpus", s, "cpu.cpus")?;
                }
            }
            if let Some((v, dir)) = self.controller("cpu") {
                if v == 1 {
                    v1::cpu(dir, c)?;
                } else {
                    v2::cpu(dir, c)?;
                }
            }
        }
        if let Some(m) = &r.memory {
            if let Some((v, dir)) = self.controller("memory") {
                if v == 1 {
                    v1::memory(dir, m, &mut warnings)?;
                } else {
                    v2::memory(dir, m, &mut warnings)?;
                }
            }
        }
        if let Some(limit) = r.pids.as_ref().and_then(|p| p.limit) {
            if let Some((_, dir)) = self.controller("pids") {
                let v = if limit > 0 {
                    limit.to_string()
                } else {
                    "max".to_string()
                };
                write_field(dir, "pids.max", &v, "pids.limit")?;
            }
        }
        if let Some(b) = &r.block_io {
            if let Some(dir) = self.v1_dir("blkio") {
                v1::blkio(dir, b, &mut warnings)?;
            } else if let Some((_, dir)) = self.controller("io") {
                v2::io(dir, b, &mut warnings)?;
            }
        }
        for (i, h) in r.hugepage_limits.iter().flatten().enumerate() {
            if let Some((v, dir)) = self.controller("hugetlb") {
                let file = if v == 1 {
                    format!("hugetlb.{}.limit_in_bytes", h.page_size)
                } else {
                    format!("hugetlb.{}.max", h.page_size)
                };
                write_field(
                    dir,
                    &file,
                    &h.limit.to_string(),
                    &format!("hugepageLimits[{i}]"),
                )?;
            }
        }
        if let Some(n) = &r.network {
            v1::network(self.v1_dir("net_cls"), self.v1_dir("net_prio"), n)?;
        }
        for (dev, l) in r.rdma.iter().flatten() {
            if let Some((_, dir)) = self.controller("rdma") {
                let num = |v: Option<u32>| v.map_or("max".to_string(), |x| x.to_string());
                let v = format!(
                    "{dev} hca_handle={} hca_object={}",
                    num(l.hca_handles),
                    num(l.hca_objects)
                );
                write_field(dir, "rdma.max", &v, &format!("rdma.{dev:?}"))?;
            }
        }
        if let Some(rules) = &r.devices {
            if let Some(dir) = self.v1_dir("devices") {
                devices::apply_v1(dir, rules)?;
            } else if let Some(dir) = self.unified_dir() {
                devices::apply_bpf(dir, rules)?;
            }
        }
        for (key, value) in r.unified.iter().flatten() {
            if let Some(dir) = self.unified_dir() {
                write_field(dir, key, value, &format!("unified.{key:?}"))?;
            }
        }
        Ok(warnings)
    }
}
