//! Images, templates and snapshots: what the daemon reports and what a client asks for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An image in the daemon's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    /// Its name (`name:tag`).
    pub name: String,
    /// The digest of its manifest.
    pub digest: String,
    /// The size of its layers, bytes.
    pub size: u64,
    /// Number of layers.
    pub layers: u64,
    /// When it was recorded, seconds since the epoch.
    pub created: u64,
    /// The tenant whose own image it is, seen by that tenant only; none for a shared image
    /// (one an admin pulled, imported or built), seen by every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The body of `POST /v1/templates/build`: a template folder on the daemon's host, or a name
/// from the daemon's template library.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateBuild {
    /// An absolute path to a template folder (admin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A template of the daemon's library (`busybox`, `debian`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateParam {
    /// Its type (`string`, `int`, `bool`…).
    pub kind: String,
    /// Its default value (absent for secrets and required ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether an instance must give it.
    pub required: bool,
    /// Whether its value is secret.
    pub secret: bool,
}

/// A built template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it gives.
    pub description: String,
    /// The image its build made (`name:version`).
    pub image: String,
    /// Its parameters.
    pub parameters: BTreeMap<String, TemplateParam>,
    /// Its services.
    pub services: Vec<String>,
    /// Ports it exposes.
    pub expose: Vec<u16>,
    /// Paths whose data belongs to each instance, kept in the instance's own writable layer and
    /// carried over by a rebase (they are not named volumes: they go with the instance).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// When it was built, seconds since the epoch.
    pub built: u64,
}

/// The answer of a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateBuilt {
    /// The template.
    pub template: Template,
    /// Steps in the build.
    pub steps: u64,
    /// Steps that came from the cache.
    pub cached: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The build's output, one line each.
    pub log: Vec<String>,
}

/// One line of a streamed build (`?stream=true`): a line of progress, then the result or the
/// error last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateBuildEvent {
    /// A step starting (`[2/4] run[0] …`) or a line of its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The build succeeded (the last line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built: Option<TemplateBuilt>,
    /// The build failed (the last line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ErrorBody>,
}

/// A snapshot of a container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Its name, unique within the container.
    pub name: String,
    /// When it was taken, seconds since the epoch.
    pub created: u64,
    /// The space it holds, bytes.
    pub size: u64,
}

/// The body of `POST /v1/containers/{id}/snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SnapshotCreate {
    /// The snapshot's name (letters, digits, `_ . -`).
    pub name: String,
}

/// The body of `POST /v1/containers/{id}/snapshots/{snapshot}/clone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SnapshotClone {
    /// The new container's name.
    pub name: String,
}

/// The body of `POST /v1/images/pull`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImagePull {
    /// `[registry/]repository[:tag][@digest]`; without a registry, Docker Hub.
    pub reference: String,
    /// Speak plain HTTP to the registry (default: only for a registry on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<bool>,
    /// User name for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or access token for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Which part of a pull or an import a progress event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImagePhase {
    /// The manifest is known: `total` bytes in `current` blobs at most will be fetched.
    Resolved,
    /// Bytes of one blob (`id`) fetched so far.
    Download,
    /// One blob (`id`) is verified and stored.
    Downloaded,
    /// Bytes of an uploaded archive read and stored so far.
    Import,
}

/// A progress event of a pull or an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageProgress {
    /// What it reports.
    pub phase: ImagePhase,
    /// The blob's digest (downloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Bytes (or, for `resolved`, blobs) so far.
    pub current: u64,
    /// Bytes in all.
    pub total: u64,
}

/// One line of a streamed pull or import (`?stream=true`): progress, then the images or the
/// error last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageEvent {
    /// Progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ImageProgress>,
    /// The images recorded (the last line of a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
    /// Why it failed (the last line of a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ErrorBody>,
}

/// What `POST /v1/images/prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImagesPruned {
    /// Images no container was made from (only with `all`).
    pub images: Vec<String>,
    /// Blobs no image reached any more.
    pub blobs: u64,
    /// Unpacked layers no image or container used.
    pub layers: u64,
    /// Bytes of blobs freed.
    pub bytes: u64,
}
