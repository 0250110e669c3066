//! The OCI runtime configuration (config.json), version 1.2, as serde types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::caps::Capabilities;
use crate::rlimits::Rlimit;
use crate::sched::{IoPriority, Personality, Scheduler};
use crate::seccomp::Seccomp;

/// The whole of config.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Spec version the bundle was written for.
    #[serde(default)]
    pub oci_version: String,
    /// The container's first process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    /// Host name inside the UTS namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// NIS domain name inside the UTS namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Extra mounts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Lifecycle hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// Arbitrary metadata kept in the state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Linux-specific configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
}

/// A process to run (the container's init, or one given to `exec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// Attach a pseudo-terminal.
    #[serde(default)]
    pub terminal: bool,
    /// Initial size of that terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    /// Identity of the process.
    #[serde(default)]
    pub user: User,
    /// Command and arguments; the first is looked up in PATH when not absolute.
    #[serde(default)]
    pub args: Vec<String>,
    /// Windows-only command line, kept for round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// Environment as `KEY=value`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory inside the container (absolute).
    #[serde(default)]
    pub cwd: String,
    /// Capability sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    /// Set `no_new_privs`.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// AppArmor profile (applied only where AppArmor is enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    /// OOM score adjustment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// Scheduling policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    /// SELinux label (applied only where SELinux is enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
    /// I/O priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<IoPriority>,
    /// CPU affinity for the process while it starts and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
}

/// Terminal size.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ConsoleSize {
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
}

/// CPU affinity of an exec'd process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecCpuAffinity {
    /// CPUs while the runtime sets the process up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    /// CPUs for the process itself.
    #[serde(default, rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_: Option<String>,
}

/// User and groups of a process, as ids inside the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// User id.
    #[serde(default)]
    pub uid: u32,
    /// Group id.
    #[serde(default)]
    pub gid: u32,
    /// File mode creation mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    /// Supplementary groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
    /// Windows-only user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// The root filesystem.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Root {
    /// Path, relative to the bundle or absolute.
    #[serde(default)]
    pub path: String,
    /// Mount the root read-only.
    #[serde(default)]
    pub readonly: bool,
}

/// One mount.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Absolute path inside the container.
    #[serde(default)]
    pub destination: String,
    /// Filesystem type (`bind` or absent for bind mounts).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Device, directory or pseudo source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Mount options (`fstab` style).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// User id mappings for an idmapped mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    /// Group id mappings for an idmapped mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
}

/// Hooks, by lifecycle point.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Deprecated; run with createRuntime.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    /// Runtime namespace, after the namespaces exist, before pivot_root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    /// Container namespace, before pivot_root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    /// Container namespace, before the user program is executed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    /// Runtime namespace, after the user program started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    /// Runtime namespace, after the container is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

/// One hook program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute path of the program.
    #[serde(default)]
    pub path: String,
    /// Arguments, argv[0] included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds before the hook is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// Linux-specific configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    /// Namespaces to create or join.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// User id mappings of a new user namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    /// Group id mappings of a new user namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    /// Clock offsets of a new time namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub time_offsets: BTreeMap<String, TimeOffset>,
    /// Device nodes to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// cgroup path (absolute, relative, or systemd `slice:prefix:name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// Resource limits, applied through cgroups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<condo_cgroups::Resources>,
    /// Propagation of the root mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    /// Seccomp filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    /// Kernel parameters for the container's namespaces.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
    /// Paths hidden from the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    /// SELinux context of mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    /// Execution domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<Personality>,
}

/// A namespace to create (no path) or join (path).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Namespace {
    /// pid, network, mount, ipc, uts, user, cgroup or time.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Namespace file to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One range of an id mapping.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    /// First id inside.
    #[serde(rename = "containerID")]
    pub container_id: u32,
    /// First id outside.
    #[serde(rename = "hostID")]
    pub host_id: u32,
    /// Number of ids.
    pub size: u32,
}

/// Offset of one clock in a time namespace.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TimeOffset {
    /// Seconds.
    #[serde(default)]
    pub secs: i64,
    /// Nanoseconds.
    #[serde(default)]
    pub nanosecs: u32,
}

/// A device node to create in the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// c, b, u or p.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Absolute path inside the container.
    #[serde(default)]
    pub path: String,
    /// Major number.
    #[serde(default)]
    pub major: i64,
    /// Minor number.
    #[serde(default)]
    pub minor: i64,
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// Owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl Spec {
    /// The Linux section, or an empty one.
    pub fn linux(&self) -> std::borrow::Cow<'_, Linux> {
        match &self.linux {
            Some(l) => std::borrow::Cow::Borrowed(l),
            None => std::borrow::Cow::Owned(Linux::default()),
        }
    }
}
