//! The OCI runtime-spec 1.2 `linux.resources` object, and its validation.

mod validate;

pub(crate) use validate::check_device as validate_device;
pub use validate::{parse_list, HostFacts};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `linux.resources` of the OCI runtime spec (also the body of `update --resources`).
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Device access rules, applied in order (last match wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceRule>>,
    /// Memory limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// CPU limits and placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Process-count limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    /// Block IO weights and throttles.
    #[serde(default, rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    /// Huge page limits per page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepage_limits: Option<Vec<HugepageLimit>>,
    /// net_cls class id and net_prio priorities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// RDMA limits per device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<BTreeMap<String, Rdma>>,
    /// Raw cgroup v2 files to write (key = file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<BTreeMap<String, String>>,
}

/// One device cgroup rule.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct DeviceRule {
    /// Allow (true) or deny (false).
    #[serde(default)]
    pub allow: bool,
    /// "a" (all), "b" (block) or "c" (char); absent means "a".
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Major number; absent or -1 means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// Minor number; absent or -1 means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Any of "r", "w", "m"; absent or empty means "rwm".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// `linux.resources.memory`.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Hard limit in bytes (-1: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Soft limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    /// Kernel memory limit (obsolete; accepted with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    /// Kernel TCP buffer limit (v1 only; a warning elsewhere).
    #[serde(default, rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    /// Swappiness 0-100 (v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    /// Disable the OOM killer (v1 only).
    #[serde(
        default,
        rename = "disableOOMKiller",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
    /// Hierarchical accounting (v1; always on in modern kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    /// On update, refuse a limit below the current usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

/// `linux.resources.cpu`.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// Relative share (v1 cpu.shares; converted to cpu.weight on v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    /// CFS quota in µs per period (-1: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    /// CFS burst in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// CFS period in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// Realtime runtime in µs (v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    /// Realtime period in µs (v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    /// CPU list, e.g. "0-1,3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// Memory node list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    /// SCHED_IDLE for the group (0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

/// `linux.resources.pids`.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct Pids {
    /// Maximum number of tasks (0 or negative: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `linux.resources.blockIO`.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    /// Default weight 10-1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Weight for the group's own tasks when it has children (old CFQ; v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    /// Per-device weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_device: Option<Vec<WeightDevice>>,
    /// Per-device read bytes/s limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_read_bps_device: Option<Vec<ThrottleDevice>>,
    /// Per-device write bytes/s limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_write_bps_device: Option<Vec<ThrottleDevice>>,
    /// Per-device read IO/s limits.
    #[serde(
        default,
        rename = "throttleReadIOPSDevice",
        skip_serializing_if = "Option::is_none"
    )]
    pub throttle_read_iops_device: Option<Vec<ThrottleDevice>>,
    /// Per-device write IO/s limits.
    #[serde(
        default,
        rename = "throttleWriteIOPSDevice",
        skip_serializing_if = "Option::is_none"
    )]
    pub throttle_write_iops_device: Option<Vec<ThrottleDevice>>,
}

/// A per-device weight.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    /// Device major number.
    pub major: i64,
    /// Device minor number.
    pub minor: i64,
    /// Weight 10-1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Leaf weight 10-1000 (v1 CFQ only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

/// A per-device rate limit.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct ThrottleDevice {
    /// Device major number.
    pub major: i64,
    /// Device minor number.
    pub minor: i64,
    /// Rate (bytes or operations per second; 0 removes the limit).
    pub rate: u64,
}

/// One `hugepageLimits` entry.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    /// Page size like "2MB" or "1GB".
    pub page_size: String,
    /// Limit in bytes.
    pub limit: u64,
}

/// `linux.resources.network`.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct Network {
    /// net_cls class id.
    #[serde(default, rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    /// net_prio priorities per interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<Vec<InterfacePriority>>,
}

/// A net_prio priority for one interface.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct InterfacePriority {
    /// Interface name.
    pub name: String,
    /// Priority.
    pub priority: u32,
}

/// RDMA limits for one device.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    /// Maximum HCA handles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    /// Maximum HCA objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

impl Resources {
    /// Parse the JSON of `linux.resources` (or of `update --resources`).
    pub fn from_json(text: &str) -> Result<Resources, crate::Error> {
        serde_json::from_str(text).map_err(|e| crate::Error::Json(e.to_string()))
    }
}

/// Convert v1 cpu.shares (2-262144) to v2 cpu.weight (1-10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_weight_conversion() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn spec_names_roundtrip() {
        let j = r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}],
            "memory":{"limit":1048576,"swap":2097152,"kernelTCP":5,"disableOOMKiller":true,"checkBeforeUpdate":true},
            "cpu":{"shares":512,"quota":50000,"period":100000,"realtimeRuntime":0,"cpus":"0","idle":0},
            "pids":{"limit":10},
            "blockIO":{"weight":500,"throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":10}],"weightDevice":[{"major":8,"minor":0,"weight":100}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "network":{"classID":16,"priorities":[{"name":"eth0","priority":5}]},
            "rdma":{"mlx5_1":{"hcaHandles":3}},
            "unified":{"memory.high":"100000"}}"#;
        let r = Resources::from_json(j).unwrap();
        assert_eq!(r.devices.as_ref().unwrap()[1].kind.as_deref(), Some("c"));
        assert_eq!(r.memory.as_ref().unwrap().kernel_tcp, Some(5));
        assert_eq!(
            r.block_io
                .as_ref()
                .unwrap()
                .throttle_read_iops_device
                .as_ref()
                .unwrap()[0]
                .rate,
            10
        );
        assert_eq!(r.network.as_ref().unwrap().class_id, Some(16));
        let back = serde_json::to_value(&r).unwrap();
        assert!(back["blockIO"]["throttleReadIOPSDevice"].is_array());
        assert!(back["memory"]["disableOOMKiller"].as_bool().unwrap());
        assert_eq!(back["hugepageLimits"][0]["pageSize"], "2MB");
        assert!(back.get("rdma").unwrap().get("mlx5_1").is_some());
        assert_eq!(Resources::from_json(&back.to_string()).unwrap(), r);
    }
}
