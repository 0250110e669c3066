//! `exec`: run another process inside a running container.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use crate::container::Container;
use crate::error::{Error, IoContext, Result};
use crate::ns::{Kind, Plan};
use crate::spec::Process;
use crate::state::Status;
use crate::sync::{self, Channel, Tag};

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Runtime root.
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// The process to run.
    pub process: Process,
    /// Send the terminal master here.
    pub console_socket: Option<PathBuf>,
    /// Write the process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Return once it runs.
    pub detach: bool,
    /// Pass descriptors 3..3+N.
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    pub ignore_paused: bool,
    /// Send a pidfd of the process to this unix socket.
    pub pidfd_socket: Option<PathBuf>,
}

/// Runs the process; returns its exit code, or 0 once started with `detach`.
pub fn exec(opts: &ExecOptions) -> Result<i32> {
    let c = Container::load(&opts.root, &opts.id)?;
    let status = c.status();
    match status {
        Status::Stopped => return Err(c.wrong_status(status, "cannot exec in a stopped container")),
        Status::Paused if !opts.ignore_paused => {
            return Err(c.wrong_status(status, "cannot exec in a paused container"))
        }
        _ => {}
    }
    let p = &opts.process;
    crate::validate::process_fields(p, "process", "process.json")?;
    let bad = |e: String| Error::Invalid {
        file: "process.json",
        reason: e,
    };
    let caps = p
        .capabilities
        .as_ref()
        .map(crate::caps::parse)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let rlimits = crate::rlimits::parse(&p.rlimits).map_err(|e| bad(e.to_string()))?;
    let spec = c.spec()?;
    let linux = spec.linux();
    let seccomp = linux
        .seccomp
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()
        .map_err(|e| Error::Other(e.to_string()))?;
    if p.terminal && opts.console_socket.is_none() && opts.detach {
        return Err(Error::Other(
            "--console-socket is required with a terminal and --detach".into(),
        ));
    }
    let plan = Plan::from_spec(&linux)?;
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|k| plan.has(*k)).collect();
    let pid = c.saved.pid;
    let init_fd = condo_sys::process::pidfd_open(pid)
        .ctx(|| format!("container \"{}\": cannot open its init", opts.id))?;
    if !c.saved.alive() {
        return Err(c.wrong_status(Status::Stopped, "cannot exec in a stopped container"));
    }
    let console_sock = match &opts.console_socket {
        Some(s) => Some(OwnedFd::from(
            std::os::unix::net::UnixStream::connect(s)
                .ctx(|| format!("--console-socket {}", s.display()))?,
        )),
        None => None,
    };
    let cgroup = c.cgroup();
    for k in [Kind::Pid, Kind::Time] {
        if kinds.contains(&k) {
            let f = std::fs::File::open(format!("/proc/{pid}/ns/{}", k.proc_name()))
                .ctx(|| format!("cannot open the container's {} namespace", k.name()))?;
            condo_sys::ns::setns(f.as_fd(), k.flag())
                .ctx(|| format!("cannot join the {} namespace", k.name()))?;
        }
    }
    let (parent_end, child_end) = sync::pair().ctx(|| "socketpair".into())?;
    let entry = cgroup.entry_plan()?;
    let cg_fd = entry.clone_into.as_ref();
    let forked = condo_sys::process::clone3(&condo_sys::process::CloneArgs {
        flags: 0,
        pidfd: true,
        exit_signal: libc::SIGCHLD,
        cgroup: cg_fd.map(|f| f.as_raw_fd()),
    })
    .ctx(|| "clone3".into())?;
    let (child, child_fd) = match forked {
        condo_sys::process::Forked::Child => {
            drop(parent_end);
            let ctx = ExecChild {
                init_fd: &init_fd,
                kinds: &kinds,
                process: p,
                caps: caps.as_ref(),
                rlimits: &rlimits,
                seccomp: seccomp.as_ref(),
                chan: &child_end,
                console: console_sock.as_ref(),
                preserve_fds: opts.preserve_fds,
                entry: &entry,
            };
            let e = match child_main(&ctx) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = child_end.send(Tag::Error, e.to_string().as_bytes(), &[]);
            condo_sys::exit_now(127)
        }
        condo_sys::process::Forked::Parent { pid, pidfd } => (
            pid,
            pidfd.ok_or_else(|| Error::Other("clone3 gave no pidfd".into()))?,
        ),
    };
    drop(child_end);
    drop(console_sock);
    let chan = parent_end;
    let fail = |e: Error| {
        let _ = condo_sys::process::pidfd_send_signal(child_fd.as_fd(), libc::SIGKILL);
        let _ = condo_sys::process::waitpid(child);
        e
    };
    drop(entry);
    if let Some(adj) = p.oom_score_adj {
        let _ = std::fs::write(format!("/proc/{child}/oom_score_adj"), adj.to_string());
    }
    chan.send(Tag::Go, &[], &[])
        .ctx(|| "cannot reach the exec process".into())
        .map_err(fail)?;
    let mut console = None;
    loop {
        match chan.recv() {
            Err(_) => break, // closed by a successful execve
            Ok(m) if m.tag == Tag::Console => console = m.fds.into_iter().next(),
            Ok(m) if m.tag == Tag::Error => {
                let _ = condo_sys::process::waitpid(child);
                return Err(Error::Init(String::from_utf8_lossy(&m.data).into_owned()));
            }
            Ok(_) => {}
        }
    }
    if let Some(p) = &opts.pidfd_socket {
        crate::create::send_pidfd(p, &child_fd)?;
    }
    if let Some(pf) = &opts.pid_file {
        crate::create::write_pid_file(pf, child)?;
    }
    if opts.detach {
        return Ok(0);
    }
    let old =
        condo_sys::process::block_signals(&crate::run::RELAYED).ctx(|| "sigprocmask".into())?;
    let code = crate::run::wait_child(child, &child_fd, console.as_ref());
    let _ = condo_sys::process::set_signal_mask(&old);
    code
}

struct ExecChild<'a> {
    init_fd: &'a OwnedFd,
    kinds: &'a [Kind],
    process: &'a Process,
    caps: Option<&'a crate::caps::CapSets>,
    rlimits: &'a [crate::rlimits::ParsedRlimit],
    seccomp: Option<&'a crate::seccomp::SeccompProgram>,
    chan: &'a Channel,
    console: Option<&'a OwnedFd>,
    preserve_fds: u32,
    entry: &'a condo_cgroups::EntryPlan,
}

fn child_main(x: &ExecChild<'_>) -> Result<Infallible> {
    let fail = |what: &str, e: std::io::Error| Error::Init(format!("{what}: {e}"));
    condo_sys::process::set_dumpable(false)
        .map_err(|e| fail("cannot make the process non-dumpable", e))?;
    x.entry
        .enter_v1_self()
        .map_err(|e| fail("cannot enter the container's cgroups", e))?;
    let go = x
        .chan
        .recv()
        .map_err(|e| fail("waiting for the runtime", e))?;
    if go.tag != Tag::Go {
        condo_sys::exit_now(1);
    }
    let flags = x
        .kinds
        .iter()
        .filter(|k| !matches!(k, Kind::Pid | Kind::Time))
        .fold(0, |f, k| f | k.flag());
    if flags != 0 {
        condo_sys::ns::setns(x.init_fd.as_fd(), flags)
            .map_err(|e| fail("cannot join the container's namespaces", e))?;
    }
    if x.kinds.contains(&Kind::User) {
        let _ = condo_sys::process::setresgid(0);
        let _ = condo_sys::process::setresuid(0);
    }
    let p = x.process;
    if p.terminal {
        let root =
            crate::fsutil::open_root(Path::new("/")).map_err(|e| fail("cannot open /", e))?;
        let pty = crate::console::open(root.as_fd(), p.console_size.as_ref())?;
        crate::console::hand_over(&pty.master, x.console, x.chan)?;
        crate::console::attach(&pty.peer)?;
    }
    let root = crate::fsutil::open_root(Path::new("/")).map_err(|e| fail("cannot open /", e))?;
    let cwd = crate::fsutil::open_in_root(root.as_fd(), &p.cwd, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| fail(&format!("process.cwd \"{}\"", p.cwd), e))?;
    rustix::process::fchdir(&cwd)
        .map_err(std::io::Error::from)
        .map_err(|e| fail("chdir", e))?;
    drop(cwd);
    drop(root);
    crate::init::apply_process_attrs(p, None, x.rlimits)?;
    let env = crate::init::environment(p);
    let program = crate::init::find_program(&p.args[0], &env)?;
    crate::init::become_user(p, x.caps, x.seccomp, x.preserve_fds)?;
    Err(crate::init::execute(p, &program, &env))
}
