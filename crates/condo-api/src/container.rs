//! Containers: what a client asks for, and what the daemon reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The lifecycle state of a container as the manager sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Defined, never started (or reset by a failed start).
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Waiting out the backoff before its restart policy starts it again.
    Restarting,
    /// Its process has ended.
    Stopped,
}

impl ContainerState {
    /// The word used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Stopped => "stopped",
        }
    }

    /// Parses the word back.
    pub fn parse(s: &str) -> Option<ContainerState> {
        Some(match s {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "stopped" => ContainerState::Stopped,
            _ => return None,
        })
    }

    /// Whether a process (or its monitor) exists for the container.
    pub fn is_live(self) -> bool {
        matches!(self, ContainerState::Running | ContainerState::Paused)
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the daemon starts a container again after its process ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RestartKind {
    /// Never.
    #[default]
    No,
    /// When it exits with a non-zero code, up to `max_retries` times (0 = no limit).
    OnFailure,
    /// Always, and at daemon start, unless it was stopped through the API.
    UnlessStopped,
    /// Always, and at daemon start, even after a stop through the API.
    Always,
}

/// A restart policy: its kind and, for `on-failure`, the retry limit (refused with any other
/// kind, as the text form `always:3` is: it would be stored and then mean nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, try_from = "RestartPolicyFields")]
pub struct RestartPolicy {
    /// The kind.
    #[serde(default)]
    pub policy: RestartKind,
    /// For `on-failure`: the most restarts in a row (0 = no limit).
    #[serde(default)]
    pub max_retries: u32,
}

/// [`RestartPolicy`] as read, before the retry limit is checked against the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartPolicyFields {
    #[serde(default)]
    policy: RestartKind,
    #[serde(default)]
    max_retries: u32,
}

impl TryFrom<RestartPolicyFields> for RestartPolicy {
    type Error = String;

    fn try_from(f: RestartPolicyFields) -> Result<Self, String> {
        if f.max_retries != 0 && f.policy != RestartKind::OnFailure {
            return Err("max_retries: only the on-failure policy takes a count".into());
        }
        Ok(RestartPolicy {
            policy: f.policy,
            max_retries: f.max_retries,
        })
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    /// Parses `no`, `on-failure[:N]`, `always` or `unless-stopped`.
    fn from_str(s: &str) -> Result<RestartPolicy, String> {
        let (name, n) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let policy = match name {
            "no" => RestartKind::No,
            "on-failure" => RestartKind::OnFailure,
            "always" => RestartKind::Always,
            "unless-stopped" => RestartKind::UnlessStopped,
            _ => {
                return Err(format!(
                "unknown restart policy \"{s}\": use no, on-failure[:N], always or unless-stopped"
            ))
            }
        };
        let max_retries = match n {
            None => 0,
            Some(n) if policy == RestartKind::OnFailure => n
                .parse()
                .map_err(|_| format!("restart policy \"{s}\": \"{n}\" is not a count"))?,
            Some(_) => {
                return Err(format!(
                    "restart policy \"{s}\": only on-failure takes a count"
                ))
            }
        };
        Ok(RestartPolicy {
            policy,
            max_retries,
        })
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.policy {
            RestartKind::No => f.write_str("no"),
            RestartKind::OnFailure if self.max_retries > 0 => {
                write!(f, "on-failure:{}", self.max_retries)
            }
            RestartKind::OnFailure => f.write_str("on-failure"),
            RestartKind::Always => f.write_str("always"),
            RestartKind::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

/// Resource limits of a container; an absent field means no limit (or, in an update, no change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory limit in bytes (at least 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// CPU limit in CPUs (0.5 = half of one CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Most processes and threads at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Size of the writable layer in bytes, for a container made from an image or a template
    /// (set at creation; at least 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
}

/// The body of `POST /v1/containers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContainerCreate {
    /// A name unique within the tenant (letters, digits, `_ . -`); one is made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An image reference (`name:tag` of an imported image): the container gets its own
    /// copy-on-write instance of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A built template (`name` or `name:version`): the container is an instance of it, and
    /// runs the template's init with its services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Values of the template's parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// A root filesystem directory on the host (admin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<String>,
    /// The program and its arguments (default `sh`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment as `KEY=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Working directory inside the container (absolute; default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `uid[:gid]` inside the container (default `0:0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Host name inside the container (default: its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Give the process a terminal (for interactive use).
    #[serde(default)]
    pub tty: bool,
    /// Mount the root filesystem read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The restart policy.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The network to join; absent (or `none`) means no network: a namespace of its own
    /// with only a loopback interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Container ports published on the host (needs a network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::PortMapping>,
    /// Rate limits of its traffic (needs a network; changed live with update).
    #[serde(default, skip_serializing_if = "crate::RateLimits::is_empty")]
    pub rate: crate::RateLimits,
    /// A monthly transfer allowance (needs a network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<crate::TransferAllowance>,
    /// Signal `stop` sends first (default `SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// Mounts as `NAME:/CONTAINER[:ro]` for a named volume (made on first use), or
    /// `/HOST:/CONTAINER[:ro]` for a host directory or file (admin only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// A command run inside the container now and then to tell whether it works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `host` runs the container in the host's user namespace (root inside is root outside)
    /// instead of its own id range (admin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<String>,
    /// Turns isolation off: the host's user namespace, every capability, no seccomp filter,
    /// nothing masked in /proc and /sys (admin only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// A throw-away container (`condo run --rm`): its writable layer is never flushed to
    /// disk, its state changes do not wait for the disk, and deleting it answers before its
    /// files are gone. It survives a daemon restart, not a power loss or a host crash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
}

/// The isolation a container runs with, as the daemon applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Isolation {
    /// First host uid and gid of the container's id range (its root); absent in the host's
    /// user namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_base: Option<u32>,
    /// Ids in the range (65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_count: Option<u32>,
    /// A default seccomp allowlist applies.
    pub seccomp: bool,
    /// The capability set is the reduced default one.
    pub reduced_capabilities: bool,
    /// `privileged`: isolation turned off.
    pub privileged: bool,
}

/// How the daemon checks that a container works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// The program and its arguments; exit code 0 means healthy.
    pub command: Vec<String>,
    /// Seconds between checks (default 30).
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// Seconds a check may take before it counts as failed (default 10).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Failures in a row that make the container unhealthy (default 3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds after a start during which failures do not count, for services that take a
    /// while to come up (default 0). A success ends it early.
    #[serde(default)]
    pub start_period: u64,
    /// Seconds between checks during the start period (default 1), so a service is seen
    /// healthy soon after it is up rather than an `interval` later.
    #[serde(default = "default_start_interval")]
    pub start_interval: u64,
}

fn default_start_interval() -> u64 {
    1
}

fn default_interval() -> u64 {
    30
}

fn default_timeout() -> u64 {
    10
}

fn default_retries() -> u32 {
    3
}

/// What the healthcheck says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No check has passed or failed enough yet.
    Starting,
    /// The last check passed.
    Healthy,
    /// `retries` checks in a row failed.
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// The healthcheck's state for the current run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthState {
    /// The verdict.
    pub status: HealthStatus,
    /// Failed checks in a row.
    pub failing_streak: u32,
    /// When the last check ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<String>,
    /// Exit code of the last check (-1 when it timed out or could not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// The end of its output (at most 1 KiB).
    #[serde(default)]
    pub last_output: String,
}

/// A container as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Container {
    /// Unique id (hex).
    pub id: String,
    /// Name, unique within the tenant.
    pub name: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// Lifecycle state.
    pub state: ContainerState,
    /// What it was created with (limits as last updated).
    pub config: ContainerCreate,
    /// Host pid of its process while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// When it was created.
    pub created_at: String,
    /// When it last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When its process last ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Exit code of its last run (128+N for a signal N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Restarts made by its restart policy since the last start through the API.
    #[serde(default)]
    pub restart_count: u32,
    /// The healthcheck's state while it runs (only with a healthcheck).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthState>,
    /// The isolation it runs with.
    #[serde(default)]
    pub isolation: Isolation,
    /// Its place on its network while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<crate::NetworkEndpoint>,
}

/// The body of `POST /v1/containers/{id}/rename`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContainerRename {
    /// The new name.
    pub name: String,
}

/// The body of `POST /v1/containers/{id}/update`: new limits and restart policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContainerUpdate {
    /// Limits to change (absent fields keep their value).
    #[serde(default)]
    pub limits: Limits,
    /// A new restart policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// New rate limits, applied at once to a running container (they replace the old ones
    /// whole: an absent direction becomes unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<crate::RateLimits>,
}

/// The body of `POST /v1/containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExecCreate {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Extra environment as `KEY=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Working directory (default: the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `uid[:gid]` (default: the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Give the process a terminal (needs the `Upgrade: condo-exec` header).
    #[serde(default)]
    pub tty: bool,
    /// Initial terminal size as `[rows, columns]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<[u16; 2]>,
}

/// What a plain exec returns once the process has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecResult {
    /// Exit code (128+N for a signal N).
    pub exit_code: i32,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

/// One line of a container's log (`GET /v1/containers/{id}/logs` sends one per line, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    /// When the monitor read it.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text, without its newline.
    pub line: String,
}

/// What `POST /v1/containers/{id}/wait` returns once the container has stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitResult {
    /// Exit code of the run that ended (128+N for a signal N).
    pub exit_code: i32,
}

/// A resource-usage sample of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// When the sample was taken.
    pub time: String,
    /// CPU use since the previous sample (or over the last 100 ms), in percent of one CPU.
    pub cpu_percent: f64,
    /// CPU time used since start, nanoseconds.
    pub cpu_total_ns: u64,
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// Memory limit, bytes (0 = none).
    pub memory_limit: u64,
    /// Processes and threads.
    pub pids: u64,
    /// Bytes read from block devices.
    pub io_read_bytes: u64,
    /// Bytes written to block devices.
    pub io_write_bytes: u64,
    /// Bytes the container received over its network since it started.
    #[serde(default)]
    pub net_rx_bytes: u64,
    /// Bytes the container sent over its network since it started.
    #[serde(default)]
    pub net_tx_bytes: u64,
}

/// The body of `POST /v1/containers/{id}/rebase`: move a container made from a template onto
/// another build of that template, keeping its volumes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContainerRebase {
    /// The build to move to: `name:version` (or `name@version`) of the container's template;
    /// `name` alone is its newest build.
    pub template: String,
    /// Parameters to add or change; the others keep the instance's values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Seconds the new build has to become healthy (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_limit_belongs_to_on_failure_only() {
        let p: RestartPolicy =
            serde_json::from_str(r#"{"policy": "on-failure", "max_retries": 3}"#).unwrap();
        assert_eq!(p.to_string().parse::<RestartPolicy>().unwrap(), p);
        let e = serde_json::from_str::<RestartPolicy>(r#"{"policy": "no", "max_retries": 3}"#)
            .unwrap_err();
        assert!(e.to_string().contains("only the on-failure policy"), "{e}");
        assert!(serde_json::from_str::<RestartPolicy>(r#"{"policy": "always", "x": 1}"#).is_err());
        let d: RestartPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(d, RestartPolicy::default());
    }
}
