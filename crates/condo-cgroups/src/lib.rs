//! cgroup v1, v2 and hybrid management for Condo.
//!
//! A [`Cgroup`] is one container's cgroup across every hierarchy of the host. It is made by
//! [`Cgroup::resolve`] (no filesystem change), then [`Cgroup::create`], [`Cgroup::apply`],
//! [`Cgroup::add_pid`] (or [`Cgroup::clone_into_fd`] on v2), and finally [`Cgroup::remove`].
//! The runtime stores [`Cgroup::to_saved`] in its state and reopens it with
//! [`Cgroup::from_saved`].

mod apply;
mod detect;
pub mod devices;
mod error;
mod freezer;
mod fsutil;
mod oom;
mod path;
pub mod resources;
mod stats;
mod v1;
mod v2;

pub use detect::{detect, Mode};
pub use error::Error;
pub use freezer::FreezerState;
pub use oom::OomNotifier;
pub use path::DEFAULT_PARENT;
pub use resources::{shares_to_weight, Resources};
pub use stats::Stats;

use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One hierarchy a container's cgroup lives in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Hierarchy {
    /// 1 for a v1 hierarchy, 2 for the unified one.
    pub version: u8,
    /// v1: the controllers (and `name=`) of the hierarchy; v2: those its root offers.
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted on the host.
    pub mountpoint: PathBuf,
    /// This container's cgroup directory in it.
    pub dir: PathBuf,
}

/// What the runtime stores to reopen a cgroup later without resolving it again.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SavedCgroup {
    /// The host layout when the cgroup was made.
    pub mode: Mode,
    /// The cgroup path as resolved (absolute, or relative to our own cgroup).
    pub path: String,
    /// Every hierarchy.
    pub hierarchies: Vec<Hierarchy>,
}

/// A cgroup filesystem to mount inside a container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CgroupMount {
    /// "cgroup" or "cgroup2".
    pub fstype: String,
    /// Mount options naming the hierarchy ("memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2).
    pub options: String,
    /// Directory under /sys/fs/cgroup ("memory", "unified", or "" for a pure v2 host).
    pub subdir: String,
    /// Host path of this container's cgroup in the hierarchy (to bind mount without a cgroup ns).
    pub host_path: PathBuf,
    /// Controller names that deserve a symlink to `subdir` (e.g. "cpu" → "cpu,cpuacct").
    pub links: Vec<String>,
}

/// Descriptors a new process uses to enter a cgroup (see [`Cgroup::entry_plan`]).
#[derive(Debug, Default)]
pub struct EntryPlan {
    /// The unified hierarchy's directory, for clone3's `CLONE_INTO_CGROUP`.
    pub clone_into: Option<OwnedFd>,
    /// Each v1 hierarchy's `tasks` file, opened for writing.
    pub v1_tasks: Vec<OwnedFd>,
}

impl EntryPlan {
    /// Moves the calling thread (the whole process when single-threaded) into every v1
    /// hierarchy. Call it in the new process, before it starts other threads.
    pub fn enter_v1_self(&self) -> io::Result<()> {
        for fd in &self.v1_tasks {
            rustix::io::write(fd, b"0").map_err(io::Error::from)?;
        }
        Ok(())
    }
}

/// One container's cgroup, in every hierarchy of the host.
#[derive(Clone, Debug)]
pub struct Cgroup {
    saved: SavedCgroup,
}

fn mkdir(path: &Path) -> io::Result<()> {
    rustix::fs::mkdir(path, rustix::fs::Mode::from_raw_mode(0o755)).map_err(io::Error::from)
}

impl Cgroup {
    /// Place a container's cgroupsPath in every hierarchy (runc semantics; no filesystem change).
    ///
    /// `None` or empty: `/condo/<id>`; absolute: as is; relative: below this process's own
    /// cgroup; `slice:prefix:name` (or `systemd`): only where systemd runs.
    pub fn resolve(
        cgroups_path: Option<&str>,
        container_id: &str,
        systemd: bool,
    ) -> Result<Cgroup, Error> {
        let spec = path::parse(cgroups_path, container_id, systemd)?;
        let layout = detect::layout()?;
        let own = match &spec {
            path::Spec::Relative(_) => Some(fsutil::read_path(Path::new("/proc/self/cgroup"))?),
            path::Spec::Absolute(_) => None,
        };
        let mut hierarchies = Vec::with_capacity(layout.mounts.len());
        for m in &layout.mounts {
            let cg = match &spec {
                path::Spec::Absolute(p) => p.clone(),
                path::Spec::Relative(p) => {
                    let text = own.as_deref().unwrap_or("");
                    let base = path::own_cgroup(text, m.version, &m.controllers).unwrap_or("/");
                    format!("{}{p}", base.trim_end_matches('/'))
                }
            };
            hierarchies.push(Hierarchy {
                version: m.version,
                controllers: m.controllers.clone(),
                mountpoint: m.mountpoint.clone(),
                dir: path::host_dir(&m.mountpoint, &m.root, &cg),
            });
        }
        let path = match spec {
            path::Spec::Absolute(p) => p,
            path::Spec::Relative(p) => p.trim_start_matches('/').to_string(),
        };
        Ok(Cgroup {
            saved: SavedCgroup {
                mode: layout.mode,
                path,
                hierarchies,
            },
        })
    }

    /// The layout of the host this cgroup was made on.
    pub fn mode(&self) -> Mode {
        self.saved.mode
    }

    /// The cgroup path as resolved (`/condo/<id>`, or relative to the runtime's cgroup).
    pub fn path(&self) -> &str {
        &self.saved.path
    }

    /// Every hierarchy this cgroup lives in.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.saved.hierarchies
    }

    /// What the runtime stores in its state to reopen this cgroup.
    pub fn to_saved(&self) -> SavedCgroup {
        self.saved.clone()
    }

    /// Reopen a cgroup from what [`Cgroup::to_saved`] gave.
    pub fn from_saved(saved: SavedCgroup) -> Cgroup {
        Cgroup { saved }
    }

    /// The directory of the v1 hierarchy holding `controller`.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.saved
            .hierarchies
            .iter()
            .find(|h| h.version == 1 && h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
    }

    /// The directory in the unified hierarchy, if the host has one.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.saved
            .hierarchies
            .iter()
            .find(|h| h.version == 2)
            .map(|h| h.dir.as_path())
    }

    /// Where `controller` is: its v1 hierarchy, or the unified one when it offers it there.
    pub(crate) fn controller(&self, controller: &str) -> Option<(u8, &Path)> {
        if let Some(d) = self.v1_dir(controller) {
            return Some((1, d));
        }
        self.saved
            .hierarchies
            .iter()
            .find(|h| h.version == 2 && h.controllers.iter().any(|c| c == controller))
            .map(|h| (2, h.dir.as_path()))
    }

    /// Make the cgroup in every hierarchy; on failure remove what was made.
    pub fn create(&self) -> Result<(), Error> {
        let mut made: Vec<PathBuf> = Vec::new();
        let result = self.create_inner(&mut made);
        if result.is_err() {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        result
    }

    fn create_inner(&self, made: &mut Vec<PathBuf>) -> Result<(), Error> {
        for h in &self.saved.hierarchies {
            let cpuset = h.version == 1 && h.controllers.iter().any(|c| c == "cpuset");
            mkdir_all(&h.mountpoint, &h.dir, cpuset, made)?;
            // A hybrid host's unified hierarchy is enabled only when a limit needs it.
            if h.version == 2 && self.saved.mode == Mode::V2 {
                v2::enable_controllers(&h.mountpoint, &h.dir, &h.controllers);
            }
        }
        Ok(())
    }

    /// Validate, create and apply in one step; a failure leaves no cgroup behind.
    pub fn setup(&self, r: &Resources) -> Result<Vec<String>, Error> {
        r.validate()?;
        self.create()?;
        match self.apply_with_warnings(r) {
            Ok(w) => Ok(w),
            Err(e) => {
                let _ = self.remove();
                Err(e)
            }
        }
    }

    /// Move the process `pid` into this cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        let mut buf = itoa(pid);
        buf.push('\n');
        for h in &self.saved.hierarchies {
            fsutil::write_ctl(&h.dir, "cgroup.procs", &buf)?;
        }
        Ok(())
    }

    /// On a pure v2 host, an `O_PATH|O_DIRECTORY` fd of the cgroup for clone3's `CLONE_INTO_CGROUP`.
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        if self.saved.mode != Mode::V2 {
            return None;
        }
        let dir = self.unified_dir()?;
        use rustix::fs::{Mode as FMode, OFlags};
        rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            FMode::empty(),
        )
        .ok()
    }

    /// How a new process enters this cgroup without the kernel's slow path: it is born into
    /// the unified hierarchy (CLONE_INTO_CGROUP) and moves itself into every v1 hierarchy.
    ///
    /// Moving a whole process (`cgroup.procs`) takes a global lock that waits for an RCU grace
    /// period (about 10 ms here); a single thread moving itself (`0` into v1 `tasks`) does not.
    /// The files are opened now, by the caller, so a process in a new user namespace can still
    /// write them.
    pub fn entry_plan(&self) -> Result<EntryPlan, Error> {
        use rustix::fs::{Mode as FMode, OFlags};
        let mut plan = EntryPlan::default();
        for h in &self.saved.hierarchies {
            if h.version == 2 {
                let fd = rustix::fs::open(
                    &h.dir,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    FMode::empty(),
                )
                .map_err(|e| Error::io("open", &h.dir, io::Error::from(e)))?;
                plan.clone_into = Some(fd);
            } else {
                let tasks = h.dir.join("tasks");
                let fd = rustix::fs::open(&tasks, OFlags::WRONLY | OFlags::CLOEXEC, FMode::empty())
                    .map_err(|e| Error::io("open", &tasks, io::Error::from(e)))?;
                plan.v1_tasks.push(fd);
            }
        }
        Ok(plan)
    }

    /// Remove the cgroup (and any child cgroups) from every hierarchy; already gone is fine.
    pub fn remove(&self) -> Result<(), Error> {
        let mut first = None;
        for h in &self.saved.hierarchies {
            if let Err(e) = remove_dir_retry(&h.dir) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The cgroup filesystems to mount inside a container, one per hierarchy.
    pub fn mounts(&self) -> Vec<CgroupMount> {
        self.saved
            .hierarchies
            .iter()
            .map(|h| {
                let subdir = h
                    .mountpoint
                    .strip_prefix(detect::ROOT)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| {
                        h.mountpoint
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    });
                let (fstype, options, links) = if h.version == 1 {
                    let links = if h.controllers.len() > 1 {
                        h.controllers
                            .iter()
                            .filter(|c| **c != subdir)
                            .cloned()
                            .collect()
                    } else {
                        Vec::new()
                    };
                    ("cgroup", h.controllers.join(","), links)
                } else {
                    ("cgroup2", String::new(), Vec::new())
                };
                CgroupMount {
                    fstype: fstype.to_string(),
                    options,
                    subdir,
                    host_path: h.dir.clone(),
                    links,
                }
            })
            .collect()
    }
}

fn itoa(v: i32) -> String {
    v.to_string()
}

/// mkdir -p below `root`, recording what was made; cpuset dirs get their parent's cpus/mems.
fn mkdir_all(root: &Path, dir: &Path, cpuset: bool, made: &mut Vec<PathBuf>) -> Result<(), Error> {
    match mkdir(dir) {
        Ok(()) => {
            made.push(dir.to_path_buf());
            if cpuset {
                v1::cpuset_inherit(dir)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => {
            let parent = dir.parent().filter(|p| p.starts_with(root));
            match parent {
                Some(p) if p != root => {
                    mkdir_all(root, p, cpuset, made)?;
                    mkdir_all(root, dir, cpuset, made)
                }
                _ => Err(Error::io("mkdir", dir, e)),
            }
        }
        Err(e) => Err(Error::io("mkdir", dir, e)),
    }
}

/// rmdir with retries: EBUSY while exiting tasks leave, child cgroups removed first.
fn remove_dir_retry(dir: &Path) -> Result<(), Error> {
    let mut delay = Duration::from_micros(500);
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                let code = e.raw_os_error();
                // v1 answers EBUSY both for tasks still leaving and for child cgroups.
                if !matches!(
                    code,
                    Some(libc::EBUSY) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
                ) {
                    return Err(Error::io("rmdir", dir, e));
                }
                tries += 1;
                if tries > 12 {
                    return Err(Error::io("rmdir", dir, e));
                }
                let kids = fsutil::children(dir);
                if kids.is_empty() {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
                for child in kids {
                    remove_dir_retry(&child)?;
                }
            }
        }
    }
}
