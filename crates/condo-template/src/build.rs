//! The builder: a template becomes a list of steps, each step one layer (a tar in the content
//! store and a committed snapshot), reused when a step with the same parent layer and the same
//! content was built before.

use crate::layer::{self, LayerError};
use crate::meta::{MetaError, MetaStore, TemplateMeta};
use crate::model::{Base, ModelError, Template};
use crate::runner::StepRunner;
use crate::steps::{self, Step, Work};
use crate::{base, fsroot};
use condo_storage::content::ContentError;
use condo_storage::image::types::{Descriptor, OCI_LAYER};
use condo_storage::image::{rootfs, ImageError, ImageStore};
use condo_storage::snapshot::{self, PrepareOptions, SnapshotError, Snapshotter};
use condo_storage::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A reason a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The template file is wrong.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The base cannot be used.
    #[error("{template}: from {from:?}: {reason}")]
    From {
        /// The template.
        template: String,
        /// The `from` value.
        from: String,
        /// Why.
        reason: String,
    },
    /// A step failed; nothing of it was kept.
    #[error("{template}: step {step}: {reason}")]
    Step {
        /// The template.
        template: String,
        /// The step's label (`run[1] make install`).
        step: String,
        /// Why, with the end of its output.
        reason: String,
    },
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A layer could not be written.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The builder's own files.
    #[error("builder {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What the builder reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A step starts (1-based index of `total`).
    Step {
        /// Its number.
        index: usize,
        /// How many there are.
        total: usize,
        /// What it is.
        label: String,
        /// Whether it was found in the cache (and will not run).
        cached: bool,
    },
    /// A line of a step's output.
    Log(String),
    /// A step ran and its layer was committed.
    Done {
        /// What it was.
        label: String,
        /// How long it took.
        seconds: f64,
        /// Its layer's size in bytes.
        size: u64,
    },
}

/// Where the builder works and what it runs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The builder's directory (step cache, metadata, work dirs).
    pub state: PathBuf,
    /// How steps reach the runtime.
    pub runner: StepRunner,
    /// The template library, for `from = "template:…"`.
    pub library: Option<PathBuf>,
    /// The Debian mirror (default: the host's apt mirror).
    pub mirror: Option<String>,
    /// The static busybox of `from = "host-busybox"`.
    pub host_busybox: PathBuf,
    /// Run every step even when cached.
    pub no_cache: bool,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The metadata record (also stored in the builder's [`MetaStore`]).
    pub meta: TemplateMeta,
    /// Steps in the template (its base's included).
    pub steps: usize,
    /// How many came from the cache.
    pub cached: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// One cache entry: the layer a step made on a parent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    layer: Descriptor,
    key: String,
}

/// The layers built so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<String>,
    pub top: Option<String>,
}

/// Builds templates into an image store over a snapshotter.
pub struct Builder {
    pub(crate) images: ImageStore,
    snap: Arc<dyn Snapshotter>,
    pub(crate) meta: MetaStore,
    opts: BuildOptions,
}

impl Builder {
    /// A builder; removes what builds killed part way left behind.
    pub fn open(
        images: ImageStore,
        snap: Arc<dyn Snapshotter>,
        opts: BuildOptions,
    ) -> Result<Self, BuildError> {
        for d in ["cache", "work"] {
            let p = opts.state.join(d);
            std::fs::create_dir_all(&p).map_err(|source| BuildError::Io { path: p, source })?;
        }
        let meta = MetaStore::open(opts.state.join("meta"))?;
        let b = Self {
            images,
            snap,
            meta,
            opts,
        };
        b.cleanup()?;
        Ok(b)
    }

    /// The metadata of built templates.
    pub fn metadata(&self) -> &MetaStore {
        &self.meta
    }

    fn cleanup(&self) -> Result<(), BuildError> {
        let alive = |pid: &str| Path::new(&format!("/proc/{pid}")).exists();
        for i in self.snap.walk()? {
            if let Some(rest) = i.name.strip_prefix("build/") {
                if !alive(rest.split('/').next().unwrap_or("")) {
                    let _ = self.snap.remove(&i.name);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.opts.state.join("work")) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if !alive(n.split('-').next().unwrap_or("")) {
                    let _ = snapshot::unmount(&e.path().join("rootfs"));
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    /// Builds the template in folder `dir`, reporting through `on`.
    pub fn build(&self, dir: &Path, on: &mut dyn FnMut(Event)) -> Result<Built, BuildError> {
        let start = Instant::now();
        let t = Template::load(dir)?;
        let name = t.raw.name.get_ref().clone();
        let (mut chain, inherited) = self.resolve_base(&t, on)?;
        let plan =
            steps::plan(&t, &self.opts, inherited.as_ref()).map_err(|reason| BuildError::Step {
                template: name.clone(),
                step: "plan".into(),
                reason,
            })?;
        let total = plan.len();
        let mut cached = 0;
        for (i, step) in plan.into_iter().enumerate() {
            let key = cache_key(&chain, &step);
            if let Some(hit) = self.cached(&key) {
                on(Event::Step {
                    index: i + 1,
                    total,
                    label: step.label.clone(),
                    cached: true,
                });
                cached += 1;
                chain.diff_ids.push(hit.layer.digest.to_string());
                chain.layers.push(hit.layer);
                chain.top = Some(hit.key);
                continue;
            }
            on(Event::Step {
                index: i + 1,
                total,
                label: step.label.clone(),
                cached: false,
            });
            let t0 = Instant::now();
            let layer = self.run_step(&t, &chain, &step, on).map_err(|e| match e {
                BuildError::Step { .. } => e,
                other => BuildError::Step {
                    template: name.clone(),
                    step: step.label.clone(),
                    reason: other.to_string(),
                },
            })?;
            chain.diff_ids.push(layer.layer.digest.to_string());
            chain.layers.push(layer.layer.clone());
            chain.top = Some(layer.key.clone());
            self.remember(&key, &layer)?;
            on(Event::Done {
                label: step.label.clone(),
                seconds: t0.elapsed().as_secs_f64(),
                size: layer.layer.size,
            });
        }
        let meta = self.record(&t, &chain, inherited)?;
        Ok(Built {
            meta,
            steps: total,
            cached,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    fn resolve_base(
        &self,
        t: &Template,
        on: &mut dyn FnMut(Event),
    ) -> Result<(Chain, Option<TemplateMeta>), BuildError> {
        let from_err = |reason: String| BuildError::From {
            template: t.raw.name.get_ref().clone(),
            from: t.raw.from.get_ref().clone(),
            reason,
        };
        match &t.base {
            Base::Scratch | Base::HostBusybox | Base::Debian(_) => Ok((Chain::default(), None)),
            Base::Image(r) => {
                let rec = self
                    .images
                    .get(r)
                    .map_err(|e| from_err(format!("{e} (import or pull it first)")))?;
                Ok((self.image_chain(&rec.target)?, None))
            }
            Base::Template(n) => {
                let lib = self
                    .opts
                    .library
                    .clone()
                    .unwrap_or_else(|| t.dir.join(".."));
                let dir = lib.join(n);
                if !dir.join(crate::model::FILE_NAME).exists() {
                    return Err(from_err(format!("no template {n:?} in {}", lib.display())));
                }
                let parent = self.build(&dir, on)?;
                let rec = self.images.get(&parent.meta.image)?;
                Ok((self.image_chain(&rec.target)?, Some(parent.meta)))
            }
        }
    }

    fn image_chain(&self, target: &Descriptor) -> Result<Chain, BuildError> {
        let (_, m) = self.images.manifest(target)?;
        let top = rootfs::unpack_image(&self.images, self.snap.as_ref(), &m)?;
        let cfg = self.images.config(&m)?;
        let diff_ids = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_else(|| m.layers.iter().map(|l| l.digest.to_string()).collect());
        Ok(Chain {
            layers: m.layers.clone(),
            diff_ids,
            top,
        })
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.opts.state.join("cache").join(format!("{key}.json"))
    }

    fn cached(&self, key: &str) -> Option<CacheEntry> {
        if self.opts.no_cache {
            return None;
        }
        let e: CacheEntry = condo_storage::fsutil::read_json(&self.cache_path(key)).ok()??;
        // An entry counts only while both its snapshot and its blob are still there.
        (self.snap.stat(&e.key).is_ok() && self.images.content().exists(&e.layer.digest))
            .then_some(e)
    }

    fn remember(&self, key: &str, e: &CacheEntry) -> Result<(), BuildError> {
        let p = self.cache_path(key);
        condo_storage::fsutil::write_json(&p, e)
            .map_err(|source| BuildError::Io { path: p, source })
    }

    fn run_step(
        &self,
        t: &Template,
        chain: &Chain,
        step: &Step,
        on: &mut dyn FnMut(Event),
    ) -> Result<CacheEntry, BuildError> {
        let n = WORK_N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let tmp = format!("build/{pid}/{n}");
        let work = self.opts.state.join("work").join(format!("{pid}-{n}"));
        let rootfs = work.join("rootfs");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Io { path, source }
        };
        std::fs::create_dir_all(&rootfs).map_err(io(&rootfs))?;
        let mut undo = condo_storage::reverter::Reverter::new();
        let w2 = work.clone();
        undo.add(move || {
            let _ = std::fs::remove_dir_all(&w2);
        });
        let mounts = self
            .snap
            .prepare(&tmp, chain.top.as_deref(), &PrepareOptions::default())?;
        let (s2, k2) = (self.snap.clone(), tmp.clone());
        undo.add(move || {
            let _ = s2.remove(&k2);
        });
        snapshot::mount_all(&mounts, &rootfs).map_err(io(&rootfs))?;
        let res = self.do_work(t, step, &work, &rootfs, on);
        let um = snapshot::unmount(&rootfs);
        res?;
        um.map_err(io(&rootfs))?;
        let fs = self.snap.fs_path(&tmp)?;
        let parent_fs = match (&chain.top, self.snap.is_layered()) {
            (_, true) => None,
            (Some(p), false) => Some(self.snap.fs_path(p)?),
            (None, false) => Some(work.join("empty")),
        };
        let blob = layer::write_layer(self.images.content(), &fs, parent_fs.as_deref())?;
        let desc = Descriptor {
            media_type: OCI_LAYER.into(),
            digest: blob.digest,
            size: blob.size,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let mut digests: Vec<Digest> = chain.layers.iter().map(|l| l.digest.clone()).collect();
        digests.push(desc.digest.clone());
        let key = rootfs::chain_key(&digests);
        match self.snap.commit(&key, &tmp) {
            Ok(()) => {}
            Err(SnapshotError::Exists(_)) => {
                let _ = self.snap.remove(&tmp);
            }
            Err(e) => return Err(e.into()),
        }
        undo.success();
        let _ = std::fs::remove_dir_all(&work);
        Ok(CacheEntry { layer: desc, key })
    }

    fn do_work(
        &self,
        t: &Template,
        step: &Step,
        work: &Path,
        rootfs: &Path,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), BuildError> {
        let fail = |reason: String| BuildError::Step {
            template: t.raw.name.get_ref().clone(),
            step: step.label.clone(),
            reason,
        };
        let mut tail: Vec<String> = Vec::new();
        let mut log = |l: &str| {
            if tail.len() == 8 {
                tail.remove(0);
            }
            tail.push(l.to_string());
            on(Event::Log(l.to_string()));
        };
        let exited = |code: i32, tail: &[String]| {
            format!(
                "exited with status {code}; last output:\n  {}",
                tail.join("\n  ")
            )
        };
        match &step.work {
            Work::HostBusybox => base::host_busybox(rootfs, &self.opts.host_busybox)
                .map_err(|e| fail(format!("{}: {e}", self.opts.host_busybox.display()))),
            Work::Debootstrap { suite, mirror } => {
                let code = crate::runner::run_logged(
                    &mut base::debootstrap(suite, rootfs, mirror),
                    &mut log,
                )
                .map_err(|e| fail(format!("debootstrap: {e}")))?;
                if code != 0 {
                    return Err(fail(exited(code, &tail)));
                }
                Ok(())
            }
            Work::Files(files) => {
                for f in files {
                    let owner = fsroot::owner(rootfs, &f.owner)
                        .map_err(|r| fail(format!("{}: owner: {r}", f.dest)))?;
                    fsroot::write_file(rootfs, &f.dest, &f.data, f.mode, owner)
                        .map_err(|e| fail(format!("{}: {e}", f.dest)))?;
                }
                Ok(())
            }
            Work::Container { process, needs } => {
                for n in needs {
                    if !fsroot::exists(rootfs, n) {
                        return Err(fail(format!("the image has no {n}")));
                    }
                }
                let id = format!(
                    "condo-build-{}",
                    work.file_name().unwrap_or_default().to_string_lossy()
                );
                let code = self
                    .opts
                    .runner
                    .run(&id, work, rootfs, process, &mut log)
                    .map_err(|e| fail(format!("cannot run the step: {e}")))?;
                if code != 0 {
                    return Err(fail(exited(code, &tail)));
                }
                Ok(())
            }
        }
    }
}

static WORK_N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The cache key of `step` on top of `chain`: the parent layer's snapshot and the step's content.
fn cache_key(chain: &Chain, step: &Step) -> String {
    let parent = chain.top.as_deref().unwrap_or("scratch");
    let mut material = format!("condo-template-step-v1\n{parent}\n").into_bytes();
    material.extend_from_slice(&step.material);
    Digest::of(&material).hex().to_string()
}
