//! System-wide answers: info, health, events and the caller's identity.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Role;

/// Counts of containers by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerCounts {
    /// All containers visible to the caller.
    pub total: u64,
    /// Running.
    pub running: u64,
    /// Paused.
    pub paused: u64,
    /// Stopped, created or restarting.
    pub stopped: u64,
}

/// `GET /v1/system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemInfo {
    /// Daemon version.
    pub version: String,
    /// API version (`v1`).
    pub api_version: String,
    /// The daemon's state directory.
    pub root: String,
    /// Host name.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// cgroup layout: `v1`, `v2` or `hybrid`.
    pub cgroup: String,
    /// Online CPUs.
    pub cpus: u64,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// Containers of the caller's tenant (all tenants for an admin).
    pub containers: ContainerCounts,
    /// Seconds since the daemon started.
    pub uptime_seconds: u64,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` while the daemon can reach its database.
    pub status: String,
}

/// `GET /v1/whoami`: who the daemon thinks the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Principal {
    /// Principal id: the user's name, `root` for the local superuser, `admin` for the admin token.
    pub id: String,
    /// The tenant the principal belongs to.
    pub tenant: String,
    /// Its role.
    pub role: Role,
    /// The id of the token the request came with, when it came with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// One event (`GET /v1/events` sends one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Sequence number, increasing; pass it as `since` to resume.
    pub seq: i64,
    /// When it happened.
    pub time: String,
    /// The tenant it concerns.
    pub tenant: String,
    /// Kind of resource (`container`, `volume`, `image`).
    pub kind: String,
    /// What happened (`create`, `start`, `die`, `stop`, `restart`, `pause`, `resume`, `rename`,
    /// `update`, `exec`, `delete`; for images `pull`, `import`, `delete`).
    pub action: String,
    /// The resource id.
    pub id: String,
    /// Extra details (`name`, `exit_code`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// The body of `POST /ui/session`: a browser logs in with a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionLogin {
    /// An API token.
    pub token: String,
}

/// A browser's session: who it acts as, and the token its changes must carry in `X-Condo-CSRF`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// The principal of the session's token.
    pub principal: Principal,
    /// The CSRF token.
    pub csrf: String,
}
