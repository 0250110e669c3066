//! The container's init: runs in the process clone3 made, inside the new namespaces, sets up
//! the container and finally executes the user program. It never returns.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use crate::error::{Error, Result};
use crate::fsutil::{make_in_root, open_in_root, Leaf};
use crate::ns::{Kind, Plan};
use crate::spec::{Process, Spec};
use crate::sync::{Channel, Tag};

/// How the init learns that it may start the user program.
pub enum StartGate {
    /// Wait for `Tag::Start` on the sync channel (foreground `run`).
    Channel,
    /// Accept one connection on this listening socket (`create` then `start`).
    Listener(OwnedFd),
}

/// Everything the init needs, prepared by the runtime before clone3.
pub struct InitCtx<'a> {
    /// The parsed config.
    pub spec: &'a Spec,
    /// Namespaces to create and join.
    pub plan: &'a Plan,
    /// Rootfs on the host.
    pub rootfs: &'a Path,
    /// Bundle directory.
    pub bundle: &'a Path,
    /// The container's cgroup.
    pub cgroup: &'a condo_cgroups::Cgroup,
    /// Parsed capability sets.
    pub caps: Option<&'a crate::caps::CapSets>,
    /// Parsed resource limits.
    pub rlimits: &'a [crate::rlimits::ParsedRlimit],
    /// Compiled seccomp filter.
    pub seccomp: Option<&'a crate::seccomp::SeccompProgram>,
    /// The child's end of the sync channel.
    pub chan: &'a Channel,
    /// Connected console socket, when the process wants a terminal.
    pub console: Option<&'a OwnedFd>,
    /// How to wait for `start`.
    pub gate: StartGate,
    /// Idmapped mounts prepared by the runtime.
    pub idmapped: &'a [(usize, OwnedFd)],
    /// Use chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    pub no_new_keyring: bool,
    /// Descriptors 3..3+N pass to the container.
    pub preserve_fds: u32,
    /// `CLONE_NEW*` flags to unshare once the runtime let us go (see create.rs).
    pub deferred: i32,
    /// Fork once more after that, for a new pid or time namespace under a joined user one.
    pub fork_again: bool,
    /// How to enter the v1 cgroup hierarchies (the unified one was entered by clone3).
    pub entry: &'a condo_cgroups::EntryPlan,
}

/// Entry point of the child: runs the setup and reports failure to the runtime.
pub fn run(ctx: InitCtx<'_>) -> ! {
    let chan = ctx.chan;
    let err = match setup(ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(Tag::Error, err.to_string().as_bytes(), &[]);
    condo_sys::exit_now(1)
}

fn setup(ctx: InitCtx<'_>) -> Result<Infallible> {
    let chan = ctx.chan;
    let spec = ctx.spec;
    let linux = spec.linux();
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| Error::Init("process is missing".into()))?;
    let fail = |what: &str, e: std::io::Error| Error::Init(format!("{what}: {e}"));
    // Until execve this process runs the runtime's binary: hide it (/proc/PID/exe, fds, memory)
    // from everything in the container.
    condo_sys::process::set_dumpable(false)
        .map_err(|e| fail("cannot make the init non-dumpable", e))?;
    // Into the v1 cgroups by ourselves, as one thread: no RCU grace period to wait for.
    ctx.entry
        .enter_v1_self()
        .map_err(|e| fail("cannot enter the container's cgroups", e))?;

    // The runtime writes the id maps and places us in the cgroup, then lets us go on.
    let go = chan
        .recv()
        .map_err(|e| fail("waiting for the runtime", e))?;
    if go.tag != Tag::Go {
        condo_sys::exit_now(1);
    }
    if let Some((_, fd)) = ctx.plan.join.iter().find(|(k, _)| *k == Kind::User) {
        condo_sys::ns::setns(fd.as_fd(), libc::CLONE_NEWUSER)
            .map_err(|e| fail("cannot join the user namespace", e))?;
    }
    if ctx.plan.has(Kind::User) {
        // Become the namespace's root where the maps allow it.
        let _ = condo_sys::process::setresgid(0);
        let _ = condo_sys::process::setresuid(0);
    }
    // The cgroup namespace must be rooted at the container's cgroup: make it once placed.
    let deferred_now = ctx.deferred & !libc::CLONE_NEWCGROUP;
    if deferred_now != 0 {
        condo_sys::ns::unshare(deferred_now)
            .map_err(|e| fail("cannot create the namespaces", e))?;
    }
    let mut placed = false;
    let wait_placed = |placed: &mut bool| -> Result<()> {
        if !*placed {
            let m = chan
                .recv()
                .map_err(|e| fail("waiting for the runtime", e))?;
            if m.tag != Tag::Placed {
                condo_sys::exit_now(1);
            }
            if ctx.deferred & libc::CLONE_NEWCGROUP != 0 {
                condo_sys::ns::unshare(libc::CLONE_NEWCGROUP)
                    .map_err(|e| fail("cannot create the cgroup namespace", e))?;
            }
            *placed = true;
        }
        Ok(())
    };
    if ctx.fork_again {
        // The new init must be born inside the cgroups.
        wait_placed(&mut placed)?;
        let mut more = 0;
        if ctx.plan.creates(Kind::Pid) {
            more |= libc::CLONE_NEWPID;
        }
        if ctx.plan.creates(Kind::Time) {
            more |= Kind::Time.flag();
        }
        condo_sys::ns::unshare(more)
            .map_err(|e| fail("cannot create the pid or time namespace", e))?;
        if ctx.plan.creates(Kind::Time) {
            crate::idmap::write_time_offsets("self", &linux)?;
        }
        match condo_sys::process::fork().map_err(|e| fail("fork", e))? {
            condo_sys::process::Forked::Parent { pid, .. } => {
                let _ = chan.send(Tag::Pid, &pid.to_ne_bytes(), &[]);
                condo_sys::exit_now(0);
            }
            condo_sys::process::Forked::Child => {
                condo_sys::process::set_dumpable(false)
                    .map_err(|e| fail("cannot make the init non-dumpable", e))?;
            }
        }
    }
    for kind in Kind::ALL {
        if matches!(kind, Kind::Pid | Kind::Time | Kind::User) {
            continue; // joined by the runtime before clone3: they apply to children
        }
        if let Some((_, fd)) = ctx.plan.join.iter().find(|(k, _)| *k == kind) {
            condo_sys::ns::setns(fd.as_fd(), kind.flag())
                .map_err(|e| fail(&format!("cannot join the {} namespace", kind.name()), e))?;
        }
    }
    if ctx.plan.creates(Kind::Network) {
        // A new network namespace starts with its loopback down; programs expect it up.
        condo_sys::ns::loopback_up()
            .map_err(|e| fail("cannot bring up the loopback interface", e))?;
    }
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        condo_sys::ns::sethostname(h).map_err(|e| fail("cannot set the hostname", e))?;
    }
    if let Some(d) = spec.domainname.as_deref().filter(|h| !h.is_empty()) {
        condo_sys::ns::setdomainname(d).map_err(|e| fail("cannot set the domainname", e))?;
    }
    for (k, v) in &linux.sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| fail(&format!("linux.sysctl \"{k}\""), e))?;
    }

    let userns = ctx.plan.has(Kind::User);
    let mount_ns = ctx.plan.has(Kind::Mount);
    let mut pty_peer: Option<OwnedFd> = None;
    if mount_ns {
        crate::rootfs::prepare(ctx.rootfs, linux.rootfs_propagation.as_deref())?;
        let mctx = crate::rootfs::MountCtx {
            rootfs: ctx.rootfs,
            bundle: ctx.bundle,
            userns,
            netns: ctx.plan.creates(Kind::Network),
            cgroupns: ctx.plan.has(Kind::Cgroup),
            cgroup: ctx.cgroup,
            idmapped: ctx.idmapped,
        };
        crate::rootfs::mount_all(&mctx, &spec.mounts)?;
        let mut devices = crate::rootfs::default_devices();
        for d in &linux.devices {
            devices.retain(|x| x.path != d.path);
            devices.push(d.clone());
        }
        crate::rootfs::create_devices(ctx.rootfs, &devices, userns)?;
    }
    if process.terminal {
        pty_peer = Some(open_console(&ctx, process)?);
    }

    wait_placed(&mut placed)?;
    // createRuntime and prestart hooks run in the runtime's namespaces, createContainer here.
    chan.send(Tag::RunHooks, &[], &[])
        .map_err(|e| fail("cannot reach the runtime", e))?;
    let done = chan.recv().map_err(|e| fail("waiting for hooks", e))?;
    match done.tag {
        Tag::HooksDone => {}
        _ => condo_sys::exit_now(1),
    }
    let state_json = done.data;
    if let Some(h) = &spec.hooks {
        crate::hooks::run_all("createContainer", &h.create_container, &state_json)?;
    }

    if mount_ns {
        crate::rootfs::pivot(ctx.rootfs, ctx.no_pivot)?;
        crate::rootfs::set_root_propagation(linux.rootfs_propagation.as_deref())?;
        crate::rootfs::mask_paths(&linux.masked_paths)?;
        crate::rootfs::readonly_paths(&linux.readonly_paths)?;
        if spec.root.as_ref().is_some_and(|r| r.readonly) {
            crate::rootfs::root_readonly()?;
        }
    } else {
        rustix::process::chroot(ctx.rootfs)
            .map_err(std::io::Error::from)
            .map_err(|e| fail("cannot chroot", e))?;
        std::env::set_current_dir("/").map_err(|e| fail("cannot chdir to /", e))?;
    }
    if !ctx.no_new_keyring {
        let name = CString::new(format!("_ses.{}", short_id(&state_json))).unwrap_or_default();
        match condo_sys::process::join_session_keyring(&name) {
            Ok(()) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSYS)
                    || e.raw_os_error() == Some(libc::EACCES) => {}
            Err(e) => return Err(fail("cannot join a new session keyring", e)),
        }
    }
    if let Some(peer) = &pty_peer {
        crate::console::attach(peer)?;
    }
    let root = crate::fsutil::open_root(Path::new("/")).map_err(|e| fail("cannot open /", e))?;
    let cwd = match open_in_root(root.as_fd(), &process.cwd, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_in_root(root.as_fd(), &process.cwd, Leaf::Dir)
                .map_err(|e| fail(&format!("process.cwd \"{}\"", process.cwd), e))?
        }
        Err(e) => return Err(fail(&format!("process.cwd \"{}\"", process.cwd), e)),
    };
    rustix::process::fchdir(&cwd)
        .map_err(std::io::Error::from)
        .map_err(|e| fail(&format!("process.cwd \"{}\"", process.cwd), e))?;
    drop(cwd);
    drop(root);

    let personality = spec.linux.as_ref().and_then(|l| l.personality.as_ref());
    apply_process_attrs(process, personality, ctx.rlimits)?;
    let env = environment(process);
    let program = find_program(&process.args[0], &env)?;

    let notify_fd = match ctx.seccomp {
        Some(p) if p.has_notify() => p.load().map_err(|e| Error::Init(e.to_string()))?,
        _ => None,
    };
    let fds: Vec<i32> = notify_fd.iter().map(|f| f.as_raw_fd()).collect();
    chan.send(Tag::Ready, &[], &fds)
        .map_err(|e| fail("cannot reach the runtime", e))?;
    drop(notify_fd);

    // Wait for start. The answer channel closes by itself when execve succeeds (close-on-exec).
    let conn: Option<OwnedFd> = match &ctx.gate {
        StartGate::Channel => {
            let m = chan.recv().map_err(|e| fail("waiting for start", e))?;
            if m.tag != Tag::Start {
                condo_sys::exit_now(1);
            }
            None
        }
        StartGate::Listener(l) => {
            let c = loop {
                match rustix::net::accept_with(l, rustix::net::SocketFlags::CLOEXEC) {
                    Ok(c) => break c,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(fail("waiting for start", e.into())),
                }
            };
            Some(c)
        }
    };
    let result = finish(&ctx, process, spec, &program, &env, &state_json);
    let msg = match result {
        Ok(never) => match never {},
        Err(e) => e.to_string(),
    };
    match &conn {
        Some(c) => {
            let _ = rustix::io::write(c, msg.as_bytes());
        }
        None => {
            let _ = chan.send(Tag::Error, msg.as_bytes(), &[]);
        }
    }
    condo_sys::exit_now(127)
}

/// Switches to the process's user, groups and capabilities, loads seccomp (unless it carries
/// a notify action, loaded earlier) and marks every descriptor but stdio and the preserved
/// ones close-on-exec.
pub fn become_user(
    process: &Process,
    caps: Option<&crate::caps::CapSets>,
    seccomp: Option<&crate::seccomp::SeccompProgram>,
    preserve_fds: u32,
) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| Error::Init(format!("{what}: {e}"));
    apply_lsm_labels(process)?;
    let seccomp = seccomp.filter(|p| !p.has_notify());
    if let Some(p) = seccomp.filter(|_| !process.no_new_privileges) {
        // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: do it while we hold it.
        p.load().map_err(|e| Error::Init(e.to_string()))?;
    }
    if let Some(c) = caps {
        c.drop_bounding().map_err(|e| Error::Init(e.to_string()))?;
    }
    let user = &process.user;
    condo_sys::process::set_keep_caps(true).map_err(|e| fail("prctl", e))?;
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    if setgroups_allowed {
        condo_sys::process::setgroups(&user.additional_gids)
            .map_err(|e| fail("process.user.additionalGids", e))?;
    } else if !user.additional_gids.is_empty() {
        return Err(Error::Init(
            "process.user.additionalGids: setgroups is denied in this user namespace".into(),
        ));
    }
    condo_sys::process::setresgid(user.gid)
        .map_err(|e| fail(&format!("process.user.gid {}", user.gid), e))?;
    condo_sys::process::setresuid(user.uid)
        .map_err(|e| fail(&format!("process.user.uid {}", user.uid), e))?;
    condo_sys::process::set_keep_caps(false).map_err(|e| fail("prctl", e))?;
    if let Some(c) = caps {
        c.apply().map_err(|e| Error::Init(e.to_string()))?;
    }
    if process.no_new_privileges {
        condo_sys::process::set_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
        if let Some(p) = seccomp {
            p.load().map_err(|e| Error::Init(e.to_string()))?;
        }
    }
    let keep = 3 + preserve_fds;
    condo_sys::process::cloexec_from(keep).map_err(|e| fail("close_range", e))?;
    for fd in 3..keep {
        let _ = condo_sys::process::clear_cloexec(fd as i32);
    }
    condo_sys::process::reset_signals();
    Ok(())
}

/// Asks AppArmor or SELinux to label the program at execve, where that LSM is enabled; where it
/// is not, the setting has nothing to act on and is left aside.
fn apply_lsm_labels(process: &Process) -> Result<()> {
    let write = |what: &str, value: &str| -> Result<()> {
        let path = if Path::new("/proc/self/attr/apparmor/exec").exists() && what == "apparmor" {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(path, value)
            .map_err(|e| Error::Init(format!("process.{what}: cannot set {value:?}: {e}")))
    };
    if let Some(p) = process
        .apparmor_profile
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim() == "Y");
        if enabled {
            write("apparmor", &format!("exec {p}"))?;
        }
    }
    if let Some(l) = process.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        if Path::new("/sys/fs/selinux/enforce").exists() {
            write("selinuxLabel", l)?;
        }
    }
    Ok(())
}

/// The last steps, after `start`: startContainer hooks, identity, seccomp, execve.
fn finish(
    ctx: &InitCtx<'_>,
    process: &Process,
    spec: &Spec,
    program: &CString,
    env: &[CString],
    state_json: &[u8],
) -> Result<Infallible> {
    if let Some(h) = &spec.hooks {
        crate::hooks::run_all("startContainer", &h.start_container, state_json)?;
    }
    become_user(process, ctx.caps, ctx.seccomp, ctx.preserve_fds)?;
    Err(execute(process, program, env))
}

/// Replaces this process with the program; returns only the error when that fails.
pub fn execute(process: &Process, program: &CString, env: &[CString]) -> Error {
    let args: Vec<CString> = process
        .args
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(|a| a.as_c_str()).collect();
    let e = condo_sys::execve(program, &argv, &envp);
    Error::Init(format!("cannot execute {:?}: {e}", process.args[0]))
}

/// Applies the attributes a process takes before its identity changes: resource limits,
/// execution domain, scheduling, I/O priority and umask.
pub fn apply_process_attrs(
    process: &Process,
    personality: Option<&crate::sched::Personality>,
    rlimits: &[crate::rlimits::ParsedRlimit],
) -> Result<()> {
    crate::rlimits::apply(rlimits).map_err(|e| Error::Init(e.to_string()))?;
    if let Some(p) = personality {
        crate::sched::apply_personality(p).map_err(|e| Error::Init(e.to_string()))?;
    }
    if let Some(s) = &process.scheduler {
        crate::sched::apply_scheduler(s).map_err(|e| Error::Init(e.to_string()))?;
    }
    if let Some(io) = &process.io_priority {
        crate::sched::apply_io_priority(io).map_err(|e| Error::Init(e.to_string()))?;
    }
    if let Some(m) = process.user.umask {
        condo_sys::process::umask(m);
    }
    Ok(())
}

/// The program's environment, with PATH and HOME filled in when absent.
pub fn environment(process: &Process) -> Vec<CString> {
    let mut env: Vec<CString> = process
        .env
        .iter()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    if !process.env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(process.user.uid).unwrap_or_else(|| "/".into());
        if let Ok(c) = CString::new(format!("HOME={home}")) {
            env.push(c);
        }
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Looks the program up in the container's PATH, so a missing one fails `create`, not `start`.
pub fn find_program(arg0: &str, env: &[CString]) -> Result<CString> {
    let missing = || {
        Error::Init(format!(
            "process.args[0] {arg0:?}: executable file not found in $PATH"
        ))
    };
    if arg0.contains('/') {
        let p = Path::new(arg0);
        // Engines read the errno text: Docker and Podman answer 127 for "no such file or
        // directory" and 126 for "permission denied", as they do with runc.
        return match std::fs::metadata(p) {
            Ok(_) if is_executable(p) => CString::new(arg0).map_err(|_| missing()),
            Ok(_) => Err(Error::Init(format!(
                "process.args[0] {arg0:?}: permission denied (not an executable file)"
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Init(format!(
                "process.args[0] {arg0:?}: no such file or directory"
            ))),
            Err(e) => Err(Error::Init(format!("process.args[0] {arg0:?}: {e}"))),
        };
    }
    let path = env
        .iter()
        .filter_map(|e| e.to_str().ok())
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = PathBuf::from(dir).join(arg0);
        if is_executable(&p) {
            return CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| missing());
        }
    }
    Err(missing())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn short_id(state_json: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(state_json)
        .ok()
        .and_then(|v| {
            v.get("id")
                .and_then(|i| i.as_str())
                .map(|s| s.chars().take(32).collect())
        })
        .unwrap_or_default()
}

/// Opens a pseudo-terminal in the container's devpts and hands its master to the caller.
fn open_console(ctx: &InitCtx<'_>, process: &Process) -> Result<OwnedFd> {
    let fail = |what: &str, e: std::io::Error| Error::Init(format!("{what}: {e}"));
    let root = crate::fsutil::open_root(ctx.rootfs).map_err(|e| fail("cannot open rootfs", e))?;
    let pty = crate::console::open(root.as_fd(), process.console_size.as_ref())?;
    if ctx.plan.has(Kind::Mount) {
        let console = make_in_root(root.as_fd(), "/dev/console", Leaf::File)
            .map_err(|e| fail("cannot create /dev/console", e))?;
        // Bind the terminal through its descriptor: a host path under the rootfs would follow
        // a /dev symlink in the image onto a host file.
        let src = crate::fsutil::fd_path(pty.peer.as_fd());
        condo_sys::mount::mount(
            Some(&src),
            &crate::fsutil::fd_path(console.as_fd()),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| fail("cannot bind /dev/console", e))?;
    }
    crate::console::hand_over(&pty.master, ctx.console, ctx.chan)?;
    Ok(pty.peer)
}
