//! Template metadata: what the manager needs to instantiate a built template (parameters,
//! services, first-start steps, volumes, ports, health check, limits), kept as JSON beside the
//! image record.

use crate::model::{Healthcheck, Service};
use crate::params::ParamDef;
use condo_storage::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A file rendered with the parameters when an instance is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedFile {
    /// Where it goes in the instance.
    pub dest: String,
    /// Where its unrendered text is kept in the image.
    pub source: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner as written (`user[:group]`).
    pub owner: String,
}

/// Default limits of an instance, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory in bytes.
    pub memory: Option<u64>,
    /// CPUs.
    pub cpus: Option<f64>,
    /// Most processes.
    pub pids: Option<u64>,
    /// Disk quota in bytes.
    pub disk: Option<u64>,
}

/// Everything known about one built template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMeta {
    /// The template's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// The image record's name (`name:version`).
    pub image: String,
    /// The image manifest.
    pub manifest: Digest,
    /// The committed snapshot an instance sits on.
    pub top_layer: String,
    /// The layers, base first.
    pub layers: Vec<Digest>,
    /// Parameters by name.
    pub parameters: BTreeMap<String, ParamDef>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Shell commands run once at first start.
    pub first_start: Vec<String>,
    /// Instance-owned paths.
    pub volumes: Vec<String>,
    /// Ports listened on.
    pub expose: Vec<u16>,
    /// The health check.
    pub healthcheck: Option<Healthcheck>,
    /// Default limits.
    pub resources: Limits,
    /// The process of an instance: its arguments.
    pub args: Vec<String>,
    /// Its environment (`KEY=value`).
    pub env: Vec<String>,
    /// Its working directory.
    pub workdir: String,
    /// The user services run as (empty: root).
    pub user: String,
    /// Files rendered with the parameters at instantiation.
    pub render: Vec<RenderedFile>,
    /// Seconds since the epoch of the build.
    pub built: u64,
}

/// A reason the metadata store failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// No built template has this name.
    #[error("template {0:?} is not built")]
    NotFound(String),
    /// Reading or writing a record failed.
    #[error("template metadata {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Template metadata records in one directory, one JSON file per `name:version`.
#[derive(Debug, Clone)]
pub struct MetaStore {
    root: PathBuf,
}

impl MetaStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, MetaError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| MetaError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(Self { root })
    }

    fn path(&self, image: &str) -> PathBuf {
        self.root
            .join(format!("{}.json", Digest::of(image.as_bytes()).hex()))
    }

    /// Stores (replacing) a record.
    pub fn put(&self, m: &TemplateMeta) -> Result<(), MetaError> {
        let p = self.path(&m.image);
        condo_storage::fsutil::write_json(&p, m).map_err(|source| MetaError::Io { path: p, source })
    }

    /// The record of `name:version`; a bare name means its newest build.
    pub fn get(&self, image: &str) -> Result<TemplateMeta, MetaError> {
        if !image.contains(':') {
            return self
                .list()?
                .into_iter()
                .filter(|m| m.name == image)
                .max_by_key(|m| m.built)
                .ok_or_else(|| MetaError::NotFound(image.into()));
        }
        let p = self.path(image);
        condo_storage::fsutil::read_json(&p)
            .map_err(|source| MetaError::Io {
                path: p.clone(),
                source,
            })?
            .ok_or_else(|| MetaError::NotFound(image.into()))
    }

    /// Every record, by image name.
    pub fn list(&self) -> Result<Vec<TemplateMeta>, MetaError> {
        let rd = std::fs::read_dir(&self.root).map_err(|source| MetaError::Io {
            path: self.root.clone(),
            source,
        })?;
        let mut out: Vec<TemplateMeta> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| condo_storage::fsutil::read_json(&e.path()).ok().flatten())
            .collect();
        out.sort_by(|a, b| a.image.cmp(&b.image));
        Ok(out)
    }

    /// Forgets a record (the image record and layers are the image store's).
    pub fn delete(&self, image: &str) -> Result<(), MetaError> {
        let p = self.path(image);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(MetaError::NotFound(image.into()))
            }
            Err(source) => Err(MetaError::Io { path: p, source }),
        }
    }
}
