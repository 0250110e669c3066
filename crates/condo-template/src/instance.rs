//! Instantiation: an instance of a built template, in O(1) on its layers, tailored with
//! parameters (rendered files and the parameters file condo-init reads).

use crate::meta::TemplateMeta;
use crate::params::{self, ParamError};
use crate::{fsroot, steps};
use condo_storage::image::{rootfs, ImageError, ImageStore};
use condo_storage::instance::{InstanceError, InstanceStore};
use condo_storage::snapshot::{self, Mount, SnapshotError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the parameters are written in an instance (mode 0600, sourced by condo-init).
pub const PARAMS_FILE: &str = "/etc/condo/params.env";

/// A reason an instance could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InstantiateError {
    /// The parameters were refused.
    #[error("template {template}: {source}")]
    Params {
        /// The template.
        template: String,
        /// Why.
        source: ParamError,
    },
    /// The image's layers could not be found or unpacked.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The instance store failed.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// Writing into the instance failed.
    #[error("instance {instance}: {what}: {reason}")]
    Write {
        /// The instance.
        instance: String,
        /// The file or mount.
        what: String,
        /// Why.
        reason: String,
    },
}

/// A new instance: its root filesystem and the process to start in it.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its name in the instance store.
    pub name: String,
    /// The mounts of its root filesystem.
    pub mounts: Vec<Mount>,
    /// The process (condo-init): arguments.
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<String>,
    /// Its working directory.
    pub cwd: String,
    /// The resolved parameter values (secret ones included: the caller stores them safely).
    pub params: BTreeMap<String, String>,
}

/// Checks `given` against the template's parameters: the values an instance would get.
pub fn check_params(
    meta: &TemplateMeta,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, InstantiateError> {
    params::resolve(&meta.parameters, given).map_err(|source| InstantiateError::Params {
        template: meta.image.clone(),
        source,
    })
}

/// Creates instance `name` of `meta` with parameters `given` (and quota `quota`, default the
/// template's disk limit): O(1) on the template's layers, then the rendered files and the
/// parameters file are written into it. `scratch` is a directory for a temporary mount. On
/// failure nothing is left.
pub fn instantiate(
    images: &ImageStore,
    instances: &InstanceStore,
    meta: &TemplateMeta,
    name: &str,
    given: &BTreeMap<String, String>,
    quota: Option<u64>,
    scratch: &Path,
) -> Result<Instance, InstantiateError> {
    let values = check_params(meta, given)?;
    let snap = instances.snapshotter();
    let top = match snap.stat(&meta.top_layer) {
        Ok(_) => Some(meta.top_layer.clone()),
        Err(SnapshotError::NotFound(_)) => {
            let rec = images.get(&meta.image)?;
            let (_, m) = images.manifest(&rec.target)?;
            rootfs::unpack_image(images, snap.as_ref(), &m)?
        }
        Err(e) => return Err(ImageError::from(e).into()),
    };
    let mounts = instances.create(name, top.as_deref(), quota.or(meta.resources.disk))?;
    if let Err(e) = tailor(meta, name, &mounts, &values, scratch) {
        let _ = instances.delete(name);
        return Err(e);
    }
    Ok(Instance {
        name: name.into(),
        mounts,
        args: meta.args.clone(),
        env: meta.env.clone(),
        cwd: meta.workdir.clone(),
        params: values,
    })
}

fn tailor(
    meta: &TemplateMeta,
    name: &str,
    mounts: &[Mount],
    values: &BTreeMap<String, String>,
    scratch: &Path,
) -> Result<(), InstantiateError> {
    let werr = |what: &str, reason: String| InstantiateError::Write {
        instance: name.into(),
        what: what.into(),
        reason,
    };
    let dir: PathBuf = scratch.join(format!("condo-tailor-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| werr("mount point", e.to_string()))?;
    if let Err(e) = snapshot::mount_all(mounts, &dir) {
        let _ = std::fs::remove_dir(&dir);
        return Err(werr("mount", e.to_string()));
    }
    let res = write_tailoring(meta, &dir, values).map_err(|(what, reason)| werr(&what, reason));
    let um = snapshot::unmount(&dir);
    let _ = std::fs::remove_dir(&dir);
    res?;
    um.map_err(|e| werr("unmount", e.to_string()))
}

fn write_tailoring(
    meta: &TemplateMeta,
    root: &Path,
    values: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    for f in &meta.render {
        let text = fsroot::read_file(root, &f.source)
            .map_err(|e| (f.source.clone(), e.to_string()))?
            .ok_or_else(|| (f.source.clone(), "missing from the image".to_string()))?;
        let text = String::from_utf8(text).map_err(|e| (f.source.clone(), e.to_string()))?;
        let out = params::render(&text, values).map_err(|e| (f.dest.clone(), e.to_string()))?;
        let owner = fsroot::owner(root, &f.owner).map_err(|e| (f.dest.clone(), e))?;
        fsroot::write_file(root, &f.dest, out.as_bytes(), f.mode, owner)
            .map_err(|e| (f.dest.clone(), e.to_string()))?;
    }
    let mut env = String::from("# Parameters of this instance, written by Condo.\n");
    for (k, v) in values {
        env.push_str(&format!("{k}={}\n", params::shell_quote(v)));
    }
    fsroot::write_file(root, PARAMS_FILE, env.as_bytes(), 0o600, (0, 0))
        .map_err(|e| (PARAMS_FILE.to_string(), e.to_string()))?;
    let _ = steps::INIT;
    Ok(())
}
