//! `condo-monitor run`: create, start and watch one container until it ends.
//!
//! Protocol with condod: our stdout is a pipe that condod reads to its end. We fork at once (the
//! parent exits, so condod reaps it and we are nobody's child), start a new session, and write
//! one line to that pipe: `ok INIT_PID MONITOR_PID` or `error MESSAGE`. Then we close it and
//! keep running as `condo-monitor-watch` (see [`condo_monitor::watch`]). The files we leave in
//! `--dir`: `monitor.pid` (`PID STARTTIME`), the log, and `exit.json` once the container has
//! ended.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use condo_monitor::logfile::Log;
use condo_monitor::watch::{self, Handoff, Watch, ATTACH_SOCKET, EXIT_FILE, PID_FILE, WATCH_BIN};
use condo_runtime::create::{create, CreateOptions, Created};
use condo_runtime::sync::Tag;
use condo_sys::process::{self, Forked};

use crate::Args;

/// Runs the subcommand; returns the process exit code.
pub fn main(a: &Args) -> i32 {
    match process::fork() {
        Ok(Forked::Parent { .. }) => return 0,
        Ok(Forked::Child) => {}
        Err(e) => {
            println!("error cannot fork: {e}");
            return 1;
        }
    }
    let _ = process::setsid();
    let report = rustix::io::fcntl_dupfd_cloexec(std::io::stdout().as_fd(), 3);
    let errlog = rustix::io::fcntl_dupfd_cloexec(std::io::stderr().as_fd(), 3);
    let (report, errlog) = match (report, errlog) {
        (Ok(r), Ok(e)) => (r, e),
        _ => return 1,
    };
    let mut report = std::fs::File::from(report);
    let made = setup(a);
    let _ = process::dup_onto(errlog.as_raw_fd(), 2);
    drop(errlog);
    match made {
        Ok(h) => {
            let _ = writeln!(report, "ok {} {}", h.pid, std::process::id());
            drop(report);
            let watcher = std::env::current_exe()
                .map(|p| p.with_file_name(WATCH_BIN))
                .unwrap_or_default();
            let e = h.exec(&watcher);
            // No watcher to become: watch from this process.
            eprintln!("condo-monitor: cannot run {}: {e}", watcher.display());
            match Watch::adopt(&h) {
                Ok(mut w) => {
                    let code = w.supervise();
                    watch::finish(&h, code);
                }
                Err(e) => eprintln!("condo-monitor: {e}"),
            }
            0
        }
        Err(e) => {
            let _ = writeln!(report, "error {}", e.replace('\n', " "));
            1
        }
    }
}

/// The host uid and gid the container's process runs as, through its user namespace's maps;
/// `None` without a user namespace (its ids are the host's own, host root owns the pipes).
fn process_host_ids(bundle: &std::path::Path) -> Option<(u32, u32)> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let in_userns = spec["linux"]["namespaces"]
        .as_array()?
        .iter()
        .any(|n| n["type"] == "user");
    if !in_userns {
        return None;
    }
    let map = |maps: &str, id: u64| -> Option<u32> {
        spec["linux"][maps].as_array()?.iter().find_map(|m| {
            let (inside, host, size) = (
                m["containerID"].as_u64()?,
                m["hostID"].as_u64()?,
                m["size"].as_u64()?,
            );
            (id >= inside && id < inside + size).then(|| (host + id - inside) as u32)
        })
    };
    let user = &spec["process"]["user"];
    Some((
        map("uidMappings", user["uid"].as_u64().unwrap_or(0))?,
        map("gidMappings", user["gid"].as_u64().unwrap_or(0))?,
    ))
}

/// Creates and starts the container; what the watcher needs of it.
fn setup(a: &Args) -> Result<Handoff, String> {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| format!("cannot create {}: {e}", a.dir.display()))?;
    // The watcher opens it again; a log that cannot be written is refused before the start.
    drop(
        Log::open(&a.dir, a.log_max, a.log_keep)
            .map_err(|e| format!("cannot open the log: {e}"))?,
    );
    process::set_child_subreaper().map_err(|e| format!("cannot become a subreaper: {e}"))?;
    let _ = std::fs::remove_file(a.dir.join(EXIT_FILE));
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // The pipes belong to the container's user, as seen from the host: a process that opens
    // /dev/stdout or /dev/stderr again (a web server's log file linked there) goes through
    // the pipe's owner and mode, and host root's 0600 would refuse it in a user namespace.
    if let Some((uid, gid)) = process_host_ids(&a.bundle) {
        for p in [&out_w, &err_w] {
            rustix::fs::fchown(
                p,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(|e| format!("cannot give the output pipes to the container's user: {e}"))?;
        }
    }
    // The container inherits fds 0, 1 and 2 of this process: point them at our pipes.
    let onto = |fd: i32, n: i32| process::dup_onto(fd, n).map_err(|e| format!("dup: {e}"));
    onto(devnull.as_raw_fd(), 0)?;
    onto(out_w.as_raw_fd(), 1)?;
    onto(err_w.as_raw_fd(), 2)?;
    let opts = CreateOptions {
        root: a.runtime_root.clone(),
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        ..Default::default()
    };
    let created = create(&opts, true);
    let _ = onto(devnull.as_raw_fd(), 1);
    drop((out_w, err_w));
    let c = created.map_err(|e| e.to_string())?;
    if let Err(e) = start(&c) {
        let _ = process::pidfd_send_signal(c.pidfd.as_fd(), libc::SIGKILL);
        let _ = process::waitpid(c.saved.pid);
        let _ = condo_runtime::delete::delete(&a.runtime_root, &a.id, true);
        return Err(e);
    }
    let start_time =
        condo_runtime::state::proc_start_time(std::process::id() as i32).map_or(0, |t| t.0);
    let _ = condo_runtime::state::write_atomic(
        &a.dir.join(PID_FILE),
        format!("{} {start_time}\n", std::process::id()).as_bytes(),
    );
    let Created { saved, console, .. } = c;
    let (streams, attach) = match console {
        Some(m) => {
            let p = a.dir.join(ATTACH_SOCKET);
            let _ = std::fs::remove_file(&p);
            let l = UnixListener::bind(&p)
                .map_err(|e| format!("cannot listen on {}: {e}", p.display()))?;
            (
                vec![(m.into_raw_fd(), "stdout")],
                Some(OwnedFd::from(l).into_raw_fd()),
            )
        }
        None => (
            vec![
                (out_r.into_raw_fd(), "stdout"),
                (err_r.into_raw_fd(), "stderr"),
            ],
            None,
        ),
    };
    Ok(Handoff {
        pid: saved.pid,
        dir: a.dir.clone(),
        log_max: a.log_max,
        log_keep: a.log_keep,
        runtime_root: a.runtime_root.clone(),
        id: a.id.clone(),
        helper: std::env::current_exe().map_err(|e| format!("/proc/self/exe: {e}"))?,
        streams,
        attach,
    })
}

/// Lets the init execute the user program; its end of the channel closes on success.
fn start(c: &Created) -> Result<(), String> {
    c.chan
        .send(Tag::Start, &[], &[])
        .map_err(|e| format!("cannot start the container init: {e}"))?;
    match c.chan.recv() {
        Ok(m) if m.tag == Tag::Error => Err(String::from_utf8_lossy(&m.data).into_owned()),
        _ => Ok(()),
    }
}
