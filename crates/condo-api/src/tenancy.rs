//! Tenants, their quotas and usage, users, roles, API tokens and the audit log.

use serde::{Deserialize, Serialize};

/// A principal's role; each may do what the one below it may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads what its tenant has: containers, logs, stats, events, snapshots, shared images and
    /// templates. Changes nothing.
    ReadOnly,
    /// Also runs its tenant's workloads: creates, starts, stops, deletes and execs into
    /// containers, takes snapshots.
    Operator,
    /// Also manages its tenant's users and their tokens, and reads its tenant's audit log.
    TenantOwner,
    /// Everything in every tenant: tenants and quotas, shared images and templates, host paths.
    Admin,
}

impl Role {
    /// The name on the wire (`read-only`, `operator`, `tenant-owner`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::Operator => "operator",
            Role::TenantOwner => "tenant-owner",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::ReadOnly,
            Role::Operator,
            Role::TenantOwner,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tenant may use at most; an absent field has no limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Containers, in any state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<u64>,
    /// Sum of the containers' memory limits, bytes (a container then needs `limits.memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Sum of the containers' CPU limits, in CPUs (a container then needs `limits.cpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Disk the tenant's containers and volumes may fill, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    /// Networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<u64>,
    /// Bandwidth of each container's network traffic, bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    /// Network traffic in a calendar month, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_traffic: Option<u64>,
}

/// What a tenant uses now, in the units of [`Quota`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Containers, in any state.
    pub containers: u64,
    /// Sum of the containers' memory limits, bytes.
    pub memory: u64,
    /// Sum of the containers' CPU limits, in CPUs.
    pub cpus: f64,
    /// Sum of the containers' disk limits (their writable layers) and of the tenant's own
    /// images (their distinct blobs), bytes.
    #[serde(default)]
    pub disk: u64,
    /// Networks.
    pub networks: u64,
    /// The tenant's own images.
    #[serde(default)]
    pub images: u64,
    /// Network traffic of the tenant's containers this calendar month (UTC), both directions,
    /// bytes; deleted containers' traffic stays counted until the month ends.
    #[serde(default)]
    pub traffic: u64,
}

/// A tenant with its quota and what it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Tenant id (its name).
    pub id: String,
    /// Display name.
    pub name: String,
    /// When it was made.
    pub created_at: String,
    /// Its limits.
    pub quota: Quota,
    /// What it uses.
    pub usage: Usage,
}

/// The body of `POST /v1/tenants`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    /// Name: letters, digits and `_ . -`, a letter or digit first, at most 63.
    pub name: String,
    /// Its limits (none when absent).
    #[serde(default)]
    pub quota: Quota,
}

/// A user: a person or a program of a tenant, with a role; it acts through its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Name, unique within its tenant.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// Its role.
    pub role: Role,
    /// When it was made.
    pub created_at: String,
}

/// The body of `POST /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    /// Name: letters, digits and `_ . -`, a letter or digit first, at most 63.
    pub name: String,
    /// Its tenant (default: the caller's; only an admin names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Its role (a tenant owner gives at most `tenant-owner`).
    pub role: Role,
}

/// The body of `POST /v1/users/{name}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserRole {
    /// The new role; the user's tokens act with it at once.
    pub role: Role,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    /// Token id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// The user it acts as (none for the admin token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its tenant.
    pub tenant: String,
    /// The role it acts with (its user's).
    pub role: Role,
    /// When it was made.
    pub created_at: String,
    /// When it stops working, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// The body of `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    /// The user the token acts as.
    pub user: String,
    /// The user's tenant (default: the caller's; only an admin names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// What it is for (default: the user's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds until it expires (never when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// The answer to `POST /v1/tokens`: the secret is shown this once; only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCreated {
    /// The secret, to send as `Authorization: Bearer SECRET`.
    pub secret: String,
    /// The token.
    pub token: Token,
}

/// One mutating request, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Sequence number, increasing.
    pub seq: i64,
    /// When the request was answered.
    pub time: String,
    /// Who made it (a user, `root`, `admin`; `anonymous` without valid credentials).
    pub principal: String,
    /// The token it came with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The principal's tenant.
    pub tenant: String,
    /// HTTP method.
    pub method: String,
    /// The endpoint, as declared (`/v1/containers/{id}/stop`).
    pub route: String,
    /// The resource: the request's path, with the id of what a create made appended.
    pub resource: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// `ok`, `denied` (401, 403) or `error`.
    pub result: String,
    /// The error's message, for a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
