//! Named volumes: directories the daemon keeps for containers, beyond any one container's life.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Volume {
    /// Its name, unique within the tenant.
    pub name: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// When it was created.
    pub created_at: String,
    /// Where its data lives on the host (shown to the admin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Bytes its files take (filled by inspect only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Names of the containers that mount it.
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// The body of `POST /v1/volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VolumeCreate {
    /// A name (letters, digits, `_ . -`); one is made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What `POST /v1/volumes/prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumesPruned {
    /// Names of the volumes removed.
    pub volumes: Vec<String>,
    /// Bytes freed.
    pub bytes: u64,
}
