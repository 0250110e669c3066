//! Images, templates and container instances: the daemon's use of condo-storage and
//! condo-template. A container made from an image or a template gets an instance named by its
//! id, mounted at `containers/ID/rootfs` from its creation until its deletion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use condo_storage::content::ContentStore;
use condo_storage::image::ImageStore;
use condo_storage::instance::InstanceStore;
use condo_storage::snapshot::{self, OverlaySnapshotter, Snapshotter};
use condo_template::runner::StepRunner;
use condo_template::{BuildOptions, Builder, MetaStore};

/// The stores under the daemon's root.
pub struct Storage {
    /// Named images.
    pub images: ImageStore,
    /// Container root filesystems and their snapshots.
    pub instances: InstanceStore,
    /// The template builder (one build at a time).
    pub builder: Mutex<Builder>,
    /// Built templates, read without waiting for a build.
    pub meta: MetaStore,
    /// The template library, for builds by name.
    pub library: Option<PathBuf>,
    /// Scratch space (imports, tailoring mounts).
    pub scratch: PathBuf,
}

impl Storage {
    /// Opens (creating) the stores under `root/storage`.
    pub fn open(root: &Path, helper: PathBuf, library: Option<PathBuf>) -> Result<Storage> {
        let base = root.join("storage");
        let scratch = base.join("tmp");
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let content = ContentStore::open(base.join("content")).context("content store")?;
        let images = ImageStore::open(base.join("images"), content).context("image store")?;
        let snap: Arc<dyn Snapshotter> =
            Arc::new(OverlaySnapshotter::open(base.join("snapshots")).context("snapshotter")?);
        let instances =
            InstanceStore::open(base.join("instances"), snap.clone()).context("instance store")?;
        let builder = Builder::open(
            images.clone(),
            snap,
            BuildOptions {
                state: base.join("templates"),
                runner: StepRunner {
                    helper,
                    runtime_root: base.join("build-runtime"),
                },
                library: library.clone(),
                mirror: None,
                host_busybox: "/bin/busybox".into(),
                no_cache: false,
            },
        )
        .context("template builder")?;
        let meta = MetaStore::open(base.join("templates").join("meta")).context("templates")?;
        Ok(Storage {
            meta,
            images,
            instances,
            builder: Mutex::new(builder),
            library,
            scratch,
        })
    }

    /// The builder, for one build or lookup.
    pub fn builder(&self) -> std::sync::MutexGuard<'_, Builder> {
        self.builder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `dir` is a mount point: its mount differs from its parent's (a device number
/// would miss a bind mount of a directory on the same filesystem).
pub fn is_mounted(dir: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let mnt = |p: &Path| {
        statx(CWD, p, AtFlags::empty(), StatxFlags::MNT_ID)
            .ok()
            .filter(|s| s.stx_mask & StatxFlags::MNT_ID.bits() != 0)
            .map(|s| s.stx_mnt_id)
    };
    match (mnt(dir), dir.parent().and_then(mnt)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Mounts instance `name` at `target` unless it is mounted already, seen through the id
/// range `ids` when the container has one.
pub fn mount_instance(
    instances: &InstanceStore,
    name: &str,
    target: &Path,
    ids: Option<crate::idrange::IdRange>,
) -> Result<(), String> {
    mount_instance_as(instances, name, target, ids, false)
}

/// [`mount_instance`]; a `volatile` overlay never flushes its writable layer (no sync at
/// unmount either): for an ephemeral container, whose layer is thrown away with it. Such a
/// layer cannot be mounted again after a host crash, which only deletes it.
pub fn mount_instance_as(
    instances: &InstanceStore,
    name: &str,
    target: &Path,
    ids: Option<crate::idrange::IdRange>,
    volatile: bool,
) -> Result<(), String> {
    // Beside the mount, the range it shows the files through ("" for none): a mount made
    // another way (before ranges existed) is made again, not reused.
    let mark = target.with_file_name("rootfs.ids");
    let want = ids.map(|i| i.base.to_string()).unwrap_or_default();
    if is_mounted(target) {
        if std::fs::read_to_string(&mark).unwrap_or_default() == want {
            return Ok(());
        }
        unmount_instance(target)?;
    }
    std::fs::create_dir_all(target)
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let mut mounts = instances
        .mounts(name)
        .map_err(|e| format!("instance {name}: {e}"))?;
    if volatile {
        for m in mounts.iter_mut().filter(|m| m.kind == "overlay") {
            if m.options.iter().any(|o| o.starts_with("upperdir=")) {
                m.options.push("volatile".into());
            }
        }
    }
    match ids {
        Some(ids) => crate::idmount::mount_all(&mounts, target, ids)?,
        None => snapshot::mount_all(&mounts, target).map_err(|e| {
            format!(
                "cannot mount the root filesystem at {}: {e}",
                target.display()
            )
        })?,
    }
    if let Err(e) = std::fs::write(&mark, &want) {
        let _ = unmount_instance(target);
        return Err(format!("cannot write {}: {e}", mark.display()));
    }
    Ok(())
}

/// Unmounts `target` while it is a mount point.
pub fn unmount_instance(target: &Path) -> Result<(), String> {
    for _ in 0..8 {
        if !is_mounted(target) {
            return Ok(());
        }
        snapshot::unmount(target)
            .map_err(|e| format!("cannot unmount {}: {e}", target.display()))?;
    }
    Ok(())
}

/// What a new container's instance runs, when its creator did not say.
#[derive(Debug, Default)]
pub struct Process {
    /// Arguments.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// `uid[:gid]`.
    pub user: Option<String>,
    /// The template's healthcheck.
    pub healthcheck: Option<condo_api::Healthcheck>,
    /// The template's default limits.
    pub limits: condo_api::Limits,
    /// Parameters whose values are secret (kept out of the stored configuration).
    pub secrets: Vec<String>,
}

/// The record of `name` as given, or as short names mean it (`bb` is `bb:latest`, and
/// `docker.io/library/bb:latest` as `docker load` and OCI archives name it, or
/// `registry-1.docker.io/library/bb:latest` as a pull from Docker Hub does).
pub fn resolve_image(
    images: &ImageStore,
    name: &str,
) -> Result<condo_storage::image::ImageRecord, condo_storage::image::ImageError> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let tagged = if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut candidates = vec![name.to_string(), tagged.clone()];
    if !has_registry {
        let path = if tagged.contains('/') {
            tagged.clone()
        } else {
            format!("library/{tagged}")
        };
        candidates.push(format!("docker.io/{path}"));
        // What a pull from Docker Hub records.
        candidates.push(format!("registry-1.docker.io/{path}"));
    }
    for c in &candidates {
        if let Ok(r) = images.get(c) {
            return Ok(r);
        }
    }
    images.get(name)
}

/// An image as a reference resolved for a tenant: its record and the names it was found in.
#[derive(Debug, Clone)]
pub struct FoundImage {
    /// The names the record is in (the tenant's own, or the shared ones).
    pub store: ImageStore,
    /// The tenant owning it; `None` for a shared image.
    pub owner: Option<String>,
    /// The record.
    pub record: condo_storage::image::ImageRecord,
}

impl Storage {
    /// The image names of `owner`: a tenant's own, or with `None` the shared ones (the
    /// admin's, which every tenant sees). A tenant's names are a scope of the one image store,
    /// so the layers of every tenant stay in one content store, kept once.
    pub fn images_of(
        &self,
        owner: Option<&str>,
    ) -> Result<ImageStore, condo_storage::image::ImageError> {
        match owner {
            Some(t) => self.images.scoped(t),
            None => Ok(self.images.clone()),
        }
    }

    /// Resolves `name` for `tenant` (`None`: the shared names only): the tenant's own image
    /// first, then a shared one; `None` when neither has it.
    pub fn find_image(&self, tenant: Option<&str>, name: &str) -> Option<FoundImage> {
        let own = tenant.and_then(|t| {
            let store = self.images.scoped(t).ok()?;
            let record = resolve_image(&store, name).ok()?;
            Some(FoundImage {
                store,
                owner: Some(t.to_string()),
                record,
            })
        });
        own.or_else(|| {
            resolve_image(&self.images, name)
                .ok()
                .map(|record| FoundImage {
                    store: self.images.clone(),
                    owner: None,
                    record,
                })
        })
    }
}

/// Creates instance `name` of a container of `tenant` from image `image` (the tenant's own or
/// a shared one); returns the image's process.
pub fn instance_from_image(
    st: &Storage,
    tenant: &str,
    image: &str,
    name: &str,
    disk: Option<u64>,
) -> Result<Process, String> {
    let found = st
        .find_image(Some(tenant), image)
        .ok_or_else(|| condo_storage::image::ImageError::NotFound(image.into()).to_string())?;
    let (images, rec) = (&found.store, &found.record);
    let (_, m) = images.manifest(&rec.target).map_err(|e| e.to_string())?;
    let cfg = images.config(&m).map_err(|e| e.to_string())?;
    let snap = st.instances.snapshotter().clone();
    let top = condo_storage::image::rootfs::unpack_image(images, snap.as_ref(), &m)
        .map_err(|e| e.to_string())?;
    st.instances
        .create(name, top.as_deref(), disk)
        .map_err(|e| e.to_string())?;
    let c = &cfg["config"];
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut args = strings(&c["Entrypoint"]);
    args.extend(strings(&c["Cmd"]));
    let nonempty = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    Ok(Process {
        args,
        env: strings(&c["Env"]),
        cwd: nonempty(&c["WorkingDir"]),
        user: nonempty(&c["User"]).filter(|u| crate::spec::parse_user(u).is_some()),
        ..Default::default()
    })
}

/// Creates instance `name` of template `template` with `params`; returns its process.
pub fn instance_from_template(
    st: &Storage,
    template: &str,
    name: &str,
    params: &BTreeMap<String, String>,
    disk: Option<u64>,
) -> Result<Process, String> {
    let meta = st
        .meta
        .get(template)
        .map_err(|e| format!("template \"{template}\": {e} (build it first)"))?;
    let inst = condo_template::instantiate(
        &st.images,
        &st.instances,
        &meta,
        name,
        params,
        disk,
        &st.scratch,
    )
    .map_err(|e| e.to_string())?;
    let mut p = template_process(&meta);
    p.args = inst.args;
    p.env = inst.env;
    p.cwd = Some(inst.cwd).filter(|c| c.starts_with('/'));
    Ok(p)
}

/// What an instance of the template `meta` runs: condo-init as root (it starts each service as
/// the template's user), its healthcheck beside it, its default limits.
pub fn template_process(meta: &condo_template::TemplateMeta) -> Process {
    // The check runs beside condo-init, with the instance's parameters as it has them.
    let healthcheck = meta.healthcheck.as_ref().map(|h| condo_api::Healthcheck {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!(
                ". {} 2>/dev/null; {}",
                condo_template::instance::PARAMS_FILE,
                h.command
            ),
        ],
        interval: h.interval.max(1),
        timeout: h.timeout.max(1),
        retries: h.retries.max(1),
        start_period: h.start_period,
        start_interval: 1,
    });
    let r = &meta.resources;
    Process {
        args: meta.args.clone(),
        env: meta.env.clone(),
        cwd: Some(meta.workdir.clone()).filter(|c| c.starts_with('/')),
        user: None,
        healthcheck,
        limits: condo_api::Limits {
            memory: r.memory,
            cpus: r.cpus,
            pids: r.pids.map(|p| p.min(i64::MAX as u64) as i64),
            disk: r.disk,
        },
        secrets: meta
            .parameters
            .iter()
            .filter(|(_, p)| p.secret)
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

/// The wire view of a template's metadata.
pub fn template_view(m: &condo_template::TemplateMeta) -> condo_api::Template {
    condo_api::Template {
        name: m.name.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        image: m.image.clone(),
        parameters: m
            .parameters
            .iter()
            .map(|(k, p)| {
                let kind = serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| format!("{:?}", p.kind).to_lowercase());
                (
                    k.clone(),
                    condo_api::TemplateParam {
                        kind,
                        default: if p.secret { None } else { p.default.clone() },
                        required: p.required,
                        secret: p.secret,
                    },
                )
            })
            .collect(),
        services: m.services.keys().cloned().collect(),
        expose: m.expose.clone(),
        volumes: m.volumes.clone(),
        built: m.built,
    }
}

/// At start, before any request: removes instances no container row points at (a crash part
/// way through a create or a delete), with their mounts and directories.
pub fn remove_orphans(app: &crate::App) {
    let Ok(list) = app.storage.instances.list() else {
        return;
    };
    for inst in list {
        let known = crate::db::get(&app.db.lock(), &inst.name)
            .map(|r| r.is_some())
            .unwrap_or(true);
        if known {
            continue;
        }
        let dir = app.paths.dir(&inst.name);
        if let Err(e) = unmount_instance(&dir.join("rootfs")) {
            tracing::warn!(instance = %inst.name, "orphan instance: {e}");
            continue;
        }
        match app.storage.instances.delete(&inst.name) {
            Ok(()) => tracing::info!(instance = %inst.name, "removed an orphan instance"),
            Err(e) => tracing::warn!(instance = %inst.name, "orphan instance: {e}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_mount_on_the_same_filesystem_is_a_mount_point() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        assert!(!is_mounted(&dst));
        rustix::mount::mount_bind(&src, &dst).unwrap();
        let seen = is_mounted(&dst);
        unmount_instance(&dst).unwrap();
        assert!(seen, "a bind mount of a directory beside it was not seen");
        assert!(!is_mounted(&dst));
    }
}
