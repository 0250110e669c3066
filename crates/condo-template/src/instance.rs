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
    let top = top_layer(images, instances, meta)?;
    let mounts = instances.create(name, top.as_deref(), quota.or(meta.resources.disk))?;
    if let Err(e) = tailor(meta, name, &mounts, &values, scratch) {
        let _ = instances.delete(name);
        return Err(e);
    }
    Ok(Instance::of(meta, name, mounts, values))
}

impl Instance {
    fn of(
        meta: &TemplateMeta,
        name: &str,
        mounts: Vec<Mount>,
        params: BTreeMap<String, String>,
    ) -> Instance {
        Instance {
            name: name.into(),
            mounts,
            args: meta.args.clone(),
            env: meta.env.clone(),
            cwd: meta.workdir.clone(),
            params,
        }
    }
}

/// The committed layer a build's instances sit on (unpacked again if it was collected).
fn top_layer(
    images: &ImageStore,
    instances: &InstanceStore,
    meta: &TemplateMeta,
) -> Result<Option<String>, InstantiateError> {
    let snap = instances.snapshotter();
    match snap.stat(&meta.top_layer) {
        Ok(_) => Ok(Some(meta.top_layer.clone())),
        Err(SnapshotError::NotFound(_)) => {
            let rec = images.get(&meta.image)?;
            let (_, m) = images.manifest(&rec.target)?;
            Ok(rootfs::unpack_image(images, snap.as_ref(), &m)?)
        }
        Err(e) => Err(ImageError::from(e).into()),
    }
}

/// Where an instance records that its first-start steps ran.
const FIRST_START_DONE: &str = "/var/lib/condo/first-start.done";

/// Moves instance `name` onto `meta`, a newer build of its template: the build's root
/// filesystem with the instance's parameters written in again, and the instance's data under
/// the template's volumes, with the mark that its first start ran, carried over from its
/// snapshot `kept` (which the caller took just before, and rolls back to if this fails).
/// Parameters come from the instance itself, secret ones included; `given` adds or changes
/// some. The instance must be unmounted.
pub fn rebase(
    images: &ImageStore,
    instances: &InstanceStore,
    meta: &TemplateMeta,
    name: &str,
    kept: &str,
    given: &BTreeMap<String, String>,
    scratch: &Path,
) -> Result<Instance, InstantiateError> {
    let werr = |what: &str, reason: String| InstantiateError::Write {
        instance: name.into(),
        what: what.into(),
        reason,
    };
    let top = top_layer(images, instances, meta)?;
    // The old state, read through a clone of the snapshot (O(1)), gone again at the end.
    let source = format!("{name}.rebase-source");
    let _ = instances.delete(&source);
    let old_mounts = instances.clone_from(name, kept, &source, None)?;
    let old_dir = scratch.join(format!("condo-rebase-old-{}-{name}", std::process::id()));
    let new_dir = scratch.join(format!("condo-rebase-new-{}-{name}", std::process::id()));
    let mut mounted = Vec::new();
    let result = (|| {
        std::fs::create_dir_all(&old_dir).map_err(|e| werr("mount point", e.to_string()))?;
        snapshot::mount_all(&old_mounts, &old_dir).map_err(|e| werr("mount", e.to_string()))?;
        mounted.push(old_dir.clone());
        let mut values = read_params(&old_dir).map_err(|e| werr(PARAMS_FILE, e))?;
        values.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
        let values = check_params(meta, &values)?;
        let top = top
            .as_deref()
            .ok_or_else(|| werr("image", "the new build has no layers".into()))?;
        let mounts = instances.rebase(name, top)?;
        std::fs::create_dir_all(&new_dir).map_err(|e| werr("mount point", e.to_string()))?;
        snapshot::mount_all(&mounts, &new_dir).map_err(|e| werr("mount", e.to_string()))?;
        mounted.push(new_dir.clone());
        write_tailoring(meta, &new_dir, &values).map_err(|(what, reason)| werr(&what, reason))?;
        for v in &meta.volumes {
            carry(&old_dir, &new_dir, v).map_err(|e| werr(v, e))?;
        }
        if fsroot::exists(&old_dir, FIRST_START_DONE) {
            fsroot::write_file(&new_dir, FIRST_START_DONE, b"", 0o644, (0, 0))
                .map_err(|e| werr(FIRST_START_DONE, e.to_string()))?;
        }
        Ok(Instance::of(meta, name, mounts, values))
    })();
    for d in mounted.iter().rev() {
        let _ = snapshot::unmount(d);
    }
    let _ = std::fs::remove_dir(&old_dir);
    let _ = std::fs::remove_dir(&new_dir);
    let _ = instances.delete(&source);
    result
}

/// The parameters an instance was made with, from its parameters file.
fn read_params(root: &Path) -> Result<BTreeMap<String, String>, String> {
    match fsroot::read_file(root, PARAMS_FILE).map_err(|e| e.to_string())? {
        None => Ok(BTreeMap::new()),
        Some(t) => params::parse_env_file(&String::from_utf8(t).map_err(|e| e.to_string())?),
    }
}

/// Replaces what `new_root` has at volume path `path` with what `old_root` has there. Both
/// paths are resolved inside their roots; the copy keeps owners, modes, times, links and
/// extended attributes, and shares blocks where the filesystem can.
fn carry(old_root: &Path, new_root: &Path, path: &str) -> Result<(), String> {
    let Some(src) = fsroot::open_dir(old_root, path).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let dst = fsroot::make_dirs(new_root, path).map_err(|e| e.to_string())?;
    let fd_path = |fd: &std::os::fd::OwnedFd| {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ))
    };
    let (from, to) = (fd_path(&src), fd_path(&dst));
    for e in std::fs::read_dir(&to).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let p = e.path();
        let r = if e.file_type().map_err(|e| e.to_string())?.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|err| format!("cannot clear {}: {err}", e.file_name().to_string_lossy()))?;
    }
    // `DIR/.` and `DIR/`: the contents, into the directory the descriptor stands for.
    let out = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from.join("."))
        .arg(format!("{}/", to.display()))
        .output()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "copy failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
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
