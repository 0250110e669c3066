//! `create`: from a bundle to a container whose init waits for `start`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{invalid, Error, IoContext, Result};
use crate::init::{InitCtx, StartGate};
use crate::ns::{Kind, Plan};
use crate::spec::Spec;
use crate::state::{self, Saved, StateDir, Status};
use crate::sync::{self, Channel, Tag};

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Runtime state root (`--root`).
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Write the init's pid here.
    pub pid_file: Option<PathBuf>,
    /// Send the terminal master to this unix socket.
    pub console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// Pass descriptors 3..3+N to the container.
    pub preserve_fds: u32,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// Send a pidfd of the init to this unix socket (`--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
}

/// A container just created, as seen by the process that created it.
pub struct Created {
    /// The state dir.
    pub dir: StateDir,
    /// The saved state.
    pub saved: Saved,
    /// pidfd of the init.
    pub pidfd: OwnedFd,
    /// The runtime's end of the sync channel (foreground `run` keeps it to start the init).
    pub chan: Channel,
    /// Terminal master when the process has a terminal and no console socket was given.
    pub console: Option<OwnedFd>,
    /// The config.
    pub spec: Spec,
    /// Limits the host could not honour exactly (e.g. kernel memory on a kernel without it).
    pub warnings: Vec<String>,
}

/// Reads and checks a bundle's config.json, naming the field on error.
pub fn load_spec(bundle: &Path) -> Result<(Spec, Vec<u8>)> {
    let path = bundle.join("config.json");
    let raw = std::fs::read(&path).ctx(|| format!("cannot read {}", path.display()))?;
    let spec = parse_spec(&raw)?;
    Ok((spec, raw))
}

/// Parses config.json text; the error names the field that failed.
pub fn parse_spec(raw: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            invalid(inner.to_string())
        } else {
            invalid(format!("{path}: {inner}"))
        }
    })
}

/// Undoes what a failed create did to the host.
struct Undo<'a> {
    dir: Option<&'a StateDir>,
    cgroup: Option<&'a condo_cgroups::Cgroup>,
    child: Option<(i32, OwnedFd)>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some((pid, fd)) = self.child.take() {
            let _ = condo_sys::process::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = condo_sys::process::waitpid(pid);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.remove();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.remove();
        }
    }
}

/// Creates the container. `foreground` keeps the sync channel to start it from this process
/// (for `run`) instead of waiting on a socket for `start`.
pub fn create(opts: &CreateOptions, foreground: bool) -> Result<Created> {
    let dir = StateDir::new(&opts.root, &opts.id)?;
    let bundle =
        std::fs::canonicalize(&opts.bundle).ctx(|| format!("bundle {}", opts.bundle.display()))?;
    let (spec, raw) = load_spec(&bundle)?;
    let linux = spec.linux().into_owned();
    let mut plan = Plan::from_spec(&linux)?;
    crate::validate::spec(&spec, &plan)?;
    let root = spec
        .root
        .as_ref()
        .map(|r| r.path.clone())
        .unwrap_or_default();
    let rootfs = if Path::new(&root).is_absolute() {
        PathBuf::from(&root)
    } else {
        bundle.join(&root)
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| invalid(format!("root.path \"{root}\": {e}")))?;
    if !rootfs.is_dir() {
        return Err(invalid(format!("root.path \"{root}\" is not a directory")));
    }
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| invalid("process is missing"))?;
    let caps = process
        .capabilities
        .as_ref()
        .map(crate::caps::parse)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(c) = &caps {
        c.check_grantable().map_err(invalid)?;
    }
    let rlimits = crate::rlimits::parse(&process.rlimits).map_err(|e| invalid(e.to_string()))?;
    let seccomp = linux
        .seccomp
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(s) = &process.scheduler {
        crate::sched::parse_scheduler(s).map_err(|e| invalid(e.to_string()))?;
    }
    if let Some(io) = &process.io_priority {
        crate::sched::parse_io_priority(io).map_err(|e| invalid(e.to_string()))?;
    }
    if let Some(p) = &linux.personality {
        crate::sched::parse_personality(p).map_err(|e| invalid(e.to_string()))?;
    }
    if process.terminal && opts.console_socket.is_none() && !foreground {
        return Err(Error::Other(
            "--console-socket is required when process.terminal is true".into(),
        ));
    }
    let cgroup = condo_cgroups::Cgroup::resolve(
        linux.cgroups_path.as_deref(),
        &opts.id,
        opts.systemd_cgroup,
    )?;
    let resources =
        crate::devices::with_defaults(linux.resources.clone().unwrap_or_default(), &linux.devices);
    let console_sock = match &opts.console_socket {
        Some(p) => Some(connect_unix(p).ctx(|| format!("--console-socket {}", p.display()))?),
        None => None,
    };

    // From here on the host changes; `undo` reverts it if anything fails.
    dir.create()?;
    let mut undo = Undo {
        dir: Some(&dir),
        cgroup: None,
        child: None,
    };
    state::write_atomic(&dir.file(state::CONFIG_FILE), &raw)?;
    cgroup.create()?;
    undo.cgroup = Some(&cgroup);
    let warnings = cgroup.setup(&resources)?;
    let listener = if foreground {
        None
    } else {
        Some(listen_exec_socket(&dir)?)
    };
    let idmapped = crate::idmap::prepare(&spec, &bundle)?;
    let (parent_end, child_end) = sync::pair().ctx(|| "socketpair".into())?;

    // pid and time namespaces apply to children: enter or make them here, before clone3.
    let mut flags = plan.clone_flags() & !Kind::Time.flag();
    let join_user = plan.joins(Kind::User);
    if let Some((_, fd)) = plan.join.iter().find(|(k, _)| *k == Kind::Pid) {
        condo_sys::ns::setns(fd.as_fd(), libc::CLONE_NEWPID)
            .ctx(|| "cannot join the pid namespace".into())?;
    }
    if let Some((_, fd)) = plan.join.iter().find(|(k, _)| *k == Kind::Time) {
        condo_sys::ns::setns(fd.as_fd(), Kind::Time.flag())
            .ctx(|| "cannot join the time namespace".into())?;
    }
    if plan.creates(Kind::Time) && !join_user {
        if plan.creates(Kind::User) {
            // Offsets must be written before a process enters; a new user namespace would own
            // the time namespace only if made in the same clone, so create both there.
            flags |= Kind::Time.flag();
        } else {
            condo_sys::ns::unshare(Kind::Time.flag())
                .ctx(|| "cannot create the time namespace".into())?;
            crate::idmap::write_time_offsets("self", &linux)?;
        }
    }
    if plan.creates(Kind::User) && !join_user {
        // A new user namespace owns nothing it is asked to join: a network namespace made by
        // a manager belongs to the host's, and only the host's root may enter it. Enter such
        // namespaces here, before the user namespace exists; the init inherits them.
        for k in [Kind::Network, Kind::Ipc, Kind::Uts] {
            if let Some(i) = plan.join.iter().position(|(j, _)| *j == k) {
                let (_, fd) = plan.join.remove(i);
                condo_sys::ns::setns(fd.as_fd(), k.flag())
                    .ctx(|| format!("cannot join the {} namespace", k.name()))?;
            }
        }
    }
    let entry = cgroup.entry_plan()?;
    let cgroup_fd = entry.clone_into.as_ref();
    // Namespaces the init makes itself after the runtime let it go: with a joined user
    // namespace every new one must be owned by it, so all are made after joining it (and a
    // new pid or time namespace then needs one more fork); without CLONE_INTO_CGROUP the
    // cgroup namespace is made once the init sits in its cgroup, so it is rooted there.
    let mut deferred = 0;
    let mut fork_again = false;
    if join_user {
        deferred = flags & !libc::CLONE_NEWPID;
        fork_again = plan.creates(Kind::Pid) || plan.creates(Kind::Time);
        flags = 0;
        // The init's parent then exits: make its orphan ours so `run` can wait for it.
        condo_sys::process::set_child_subreaper().ctx(|| "cannot become a subreaper".into())?;
    } else if !entry.v1_tasks.is_empty() && plan.creates(Kind::Cgroup) {
        deferred = Kind::Cgroup.flag();
        flags &= !Kind::Cgroup.flag();
    }
    let forked = condo_sys::process::clone3(&condo_sys::process::CloneArgs {
        flags: flags as u64,
        pidfd: true,
        exit_signal: libc::SIGCHLD,
        cgroup: cgroup_fd.map(|f| f.as_raw_fd()),
    })
    .ctx(|| "clone3".into())?;
    let (mut pid, mut pidfd) = match forked {
        condo_sys::process::Forked::Child => {
            drop(parent_end);
            let ctx = InitCtx {
                spec: &spec,
                plan: &plan,
                rootfs: &rootfs,
                bundle: &bundle,
                cgroup: &cgroup,
                caps: caps.as_ref(),
                rlimits: &rlimits,
                seccomp: seccomp.as_ref(),
                chan: &child_end,
                console: console_sock.as_ref(),
                gate: match listener {
                    Some(l) => StartGate::Listener(l),
                    None => StartGate::Channel,
                },
                idmapped: &idmapped,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
                deferred,
                fork_again,
                entry: &entry,
            };
            crate::init::run(ctx)
        }
        condo_sys::process::Forked::Parent { pid, pidfd } => (
            pid,
            pidfd.ok_or_else(|| Error::Other("clone3 gave no pidfd".into()))?,
        ),
    };
    drop(child_end);
    drop(entry);
    drop(listener);
    drop(console_sock);
    drop(idmapped);
    let pidfd_dup = pidfd.try_clone().ctx(|| "dup".into())?;
    undo.child = Some((pid, pidfd_dup));
    let chan = parent_end;

    if plan.creates(Kind::User) {
        crate::idmap::write_maps(pid, &linux)?;
        if plan.creates(Kind::Time) {
            crate::idmap::write_time_offsets(&pid.to_string(), &linux)?;
        }
    }
    if let Some(adj) = process.oom_score_adj {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .ctx(|| "process.oomScoreAdj: cannot write oom_score_adj".into())?;
    }
    let start_time = state::proc_start_time(pid).map(|(t, _)| t).unwrap_or(0);
    let mut saved = Saved {
        id: opts.id.clone(),
        pid,
        start_time,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        annotations: spec.annotations.clone(),
        cgroup: cgroup.to_saved(),
        own_pid_ns: plan.has(Kind::Pid),
    };
    if chan.send(Tag::Go, &[], &[]).is_err() {
        // The init died already, e.g. OOM-killed as soon as it entered its memory cgroup; a
        // reason it sent first wins.
        while let Ok(m) = chan.recv() {
            if m.tag == Tag::Error {
                if let Some((p, _)) = undo.child.take() {
                    let _ = condo_sys::process::waitpid(p);
                }
                return Err(Error::Init(String::from_utf8_lossy(&m.data).into_owned()));
            }
        }
        let status = undo
            .child
            .take()
            .and_then(|(p, _)| condo_sys::process::waitpid(p).ok());
        return Err(init_died(status, &cgroup, &linux));
    }
    // A failed send means the init already ended: the loop below reads why.
    let _ = chan.send(Tag::Placed, &[], &[]);
    let mut console = None;
    loop {
        let m = match chan.recv() {
            Ok(m) => m,
            Err(_) => {
                let status = undo
                    .child
                    .take()
                    .and_then(|(p, _)| condo_sys::process::waitpid(p).ok());
                return Err(init_died(status, &cgroup, &linux));
            }
        };
        match m.tag {
            Tag::RunHooks => {
                let st = serde_json::to_vec(&saved.state(Status::Created)).unwrap_or_default();
                let creating =
                    serde_json::to_vec(&saved.state(Status::Creating)).unwrap_or_default();
                let r = spec.hooks.as_ref().map_or(Ok(()), |h| {
                    crate::hooks::run_all("prestart", &h.prestart, &creating).and_then(|_| {
                        crate::hooks::run_all("createRuntime", &h.create_runtime, &creating)
                    })
                });
                if let Err(e) = r {
                    let _ = chan.send(Tag::Error, &[], &[]);
                    return Err(e);
                }
                chan.send(Tag::HooksDone, &st, &[])
                    .ctx(|| "cannot reach the container init".into())?;
            }
            Tag::Pid => {
                // The init forked once more: the new process is the container's init.
                let first = pid;
                let raw: [u8; 4] = m
                    .data
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or_default();
                pid = i32::from_ne_bytes(raw);
                pidfd = condo_sys::process::pidfd_open(pid)
                    .ctx(|| "cannot open the container init".into())?;
                let _ = condo_sys::process::waitpid(first);
                undo.child = Some((pid, pidfd.try_clone().ctx(|| "dup".into())?));
                saved.pid = pid;
                saved.start_time = state::proc_start_time(pid).map(|(t, _)| t).unwrap_or(0);
                if let Some(adj) = process.oom_score_adj {
                    let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string());
                }
            }
            Tag::Console => {
                console = m.fds.into_iter().next();
                // The caller's terminal size, before the program can ask for it.
                if let (Some(c), Ok(ws)) =
                    (&console, rustix::termios::tcgetwinsize(std::io::stdin()))
                {
                    if process.console_size.is_none() {
                        let _ = condo_sys::process::set_winsize(c.as_fd(), ws.ws_row, ws.ws_col);
                    }
                }
            }
            Tag::Ready => {
                if let (Some(fd), Some(sc)) = (m.fds.into_iter().next(), linux.seccomp.as_ref()) {
                    let path = sc.listener_path.clone().unwrap_or_default();
                    let st = crate::seccomp::ContainerProcessState {
                        oci_version: state::OCI_VERSION.into(),
                        fds: vec!["seccompFd".into()],
                        pid,
                        metadata: sc.listener_metadata.clone(),
                        state: serde_json::to_value(saved.state(Status::Creating))
                            .unwrap_or_default(),
                    };
                    crate::seccomp::send_to_listener(Path::new(&path), fd.as_fd(), &st)
                        .map_err(|e| Error::Other(format!("linux.seccomp.listenerPath: {e}")))?;
                }
                break;
            }
            Tag::Error => {
                if let Some((p, _)) = undo.child.take() {
                    let _ = condo_sys::process::waitpid(p);
                }
                return Err(Error::Init(String::from_utf8_lossy(&m.data).into_owned()));
            }
            _ => {
                return Err(Error::Other(
                    "unexpected message from the container init".into(),
                ))
            }
        }
    }
    dir.save(&saved)?;
    if let Some(p) = &opts.pidfd_socket {
        send_pidfd(p, &pidfd)?;
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    undo.dir = None;
    undo.cgroup = None;
    undo.child = None;
    drop(undo);
    Ok(Created {
        dir,
        saved,
        pidfd,
        chan,
        console,
        spec,
        warnings,
    })
}

/// Explains why the init ended before it was set up; an OOM kill names the memory limit.
fn init_died(
    status: Option<condo_sys::process::ExitStatus>,
    cgroup: &condo_cgroups::Cgroup,
    linux: &crate::spec::Linux,
) -> Error {
    use condo_sys::process::ExitStatus;
    let how = match status {
        Some(ExitStatus::Exited(c)) => format!("exited with code {c}"),
        Some(ExitStatus::Signaled(s)) => format!("was killed by signal {s}"),
        None => "ended".to_string(),
    };
    let limit = linux
        .resources
        .as_ref()
        .and_then(|r| r.memory.as_ref())
        .and_then(|m| m.limit);
    if let (Some(ExitStatus::Signaled(libc::SIGKILL)), Some(limit)) = (status, limit) {
        if cgroup.oom_count().unwrap_or(0) > 0 {
            return crate::error::invalid(format!(
                "linux.resources.memory.limit: {limit} bytes is too small: the container's init was killed for lack of memory while it was set up"
            ));
        }
    }
    Error::Init(format!("the container's init {how} during setup"))
}

/// Writes a pid file atomically (engines read it as soon as it appears).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).ctx(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("cannot write {}", path.display()))
}

/// Sends `pidfd` over the unix socket at `path` (`--pidfd-socket`).
pub fn send_pidfd(path: &Path, pidfd: &OwnedFd) -> Result<()> {
    let s = connect_unix(path).ctx(|| format!("--pidfd-socket {}", path.display()))?;
    condo_sys::fdpass::send_with_fds(s.as_fd(), b"pidfd", &[pidfd.as_raw_fd()])
        .ctx(|| format!("--pidfd-socket {}", path.display()))
}

fn connect_unix(path: &Path) -> std::io::Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)?;
    Ok(OwnedFd::from(s))
}

/// Binds and listens on the state dir's exec socket (through the dir's fd to keep the path short).
fn listen_exec_socket(dir: &StateDir) -> Result<OwnedFd> {
    let d = crate::fsutil::open_root(&dir.path)
        .ctx(|| format!("cannot open {}", dir.path.display()))?;
    let path = crate::fsutil::fd_path(d.as_fd()).join(state::EXEC_SOCKET);
    let l = std::os::unix::net::UnixListener::bind(&path)
        .ctx(|| "cannot create the exec socket".into())?;
    Ok(OwnedFd::from(l))
}
