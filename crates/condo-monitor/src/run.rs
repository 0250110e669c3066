//! `condo-monitor run`: create, start and watch one container until it ends.
//!
//! Protocol with condod: our stdout is a pipe that condod reads to its end. We fork at once (the
//! parent exits, so condod reaps it and we are nobody's child), start a new session, and write
//! one line to that pipe: `ok INIT_PID MONITOR_PID` or `error MESSAGE`. Then we close it and
//! keep running. The files we leave in `--dir`: `monitor.pid` (`PID STARTTIME`), the log, and
//! `exit.json` once the container has ended.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use condo_runtime::create::{create, CreateOptions, Created};
use condo_runtime::sync::Tag;
use condo_sys::process::{self, Forked};
use rustix::event::{poll, PollFd, PollFlags};

use crate::exec::Frames;
use crate::logfile::{LineBuf, Log};
use crate::Args;
use std::os::unix::net::{UnixListener, UnixStream};

/// File with the monitor's pid and start time.
pub const PID_FILE: &str = "monitor.pid";
/// File with the container's exit code and time, written once it has ended.
pub const EXIT_FILE: &str = "exit.json";
/// Socket a client connects to for the terminal of a container that has one.
pub const ATTACH_SOCKET: &str = "attach.sock";

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
    match setup(a, &errlog) {
        Ok(mut w) => {
            let _ = writeln!(report, "ok {} {}", w.pid, std::process::id());
            drop(report);
            let code = w.supervise();
            finish(a, code);
            0
        }
        Err(e) => {
            let _ = writeln!(report, "error {}", e.replace('\n', " "));
            1
        }
    }
}

/// What the loop watches.
struct Watch {
    pid: i32,
    pidfd: OwnedFd,
    sigfd: OwnedFd,
    streams: Vec<(OwnedFd, LineBuf)>,
    log: Log,
    /// With a terminal: the attach socket and the one client attached to it.
    attach: Option<UnixListener>,
    client: Option<(UnixStream, Frames)>,
}

fn setup(a: &Args, errlog: &OwnedFd) -> Result<Watch, String> {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| format!("cannot create {}: {e}", a.dir.display()))?;
    let log = Log::open(&a.dir, a.log_max, a.log_keep)
        .map_err(|e| format!("cannot open the log: {e}"))?;
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
    let _ = onto(errlog.as_raw_fd(), 2);
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
    process::block_signals(&[libc::SIGCHLD]).map_err(|e| format!("sigprocmask: {e}"))?;
    let sigfd = process::signalfd(&[libc::SIGCHLD]).map_err(|e| format!("signalfd: {e}"))?;
    let Created {
        saved,
        pidfd,
        console,
        ..
    } = c;
    let tty = console.is_some();
    let streams = match console {
        Some(m) => vec![(m, LineBuf::new("stdout"))],
        None => vec![
            (out_r, LineBuf::new("stdout")),
            (err_r, LineBuf::new("stderr")),
        ],
    };
    let attach = if tty {
        let p = a.dir.join(ATTACH_SOCKET);
        let _ = std::fs::remove_file(&p);
        let l =
            UnixListener::bind(&p).map_err(|e| format!("cannot listen on {}: {e}", p.display()))?;
        let _ = l.set_nonblocking(true);
        Some(l)
    } else {
        None
    };
    Ok(Watch {
        pid: saved.pid,
        pidfd,
        sigfd,
        streams,
        log,
        attach,
        client: None,
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

impl Watch {
    /// Copies output to the log until the init ends; returns its exit code.
    fn supervise(&mut self) -> i32 {
        let mut buf = vec![0u8; 32 * 1024];
        let code = loop {
            let mut fds = vec![
                PollFd::new(&self.pidfd, PollFlags::IN),
                PollFd::new(&self.sigfd, PollFlags::IN),
            ];
            fds.extend(
                self.streams
                    .iter()
                    .map(|(fd, _)| PollFd::new(fd, PollFlags::IN)),
            );
            let n = self.streams.len();
            if let Some(l) = &self.attach {
                fds.push(PollFd::new(l, PollFlags::IN));
            }
            if let Some((c, _)) = &self.client {
                fds.push(PollFd::new(c, PollFlags::IN));
            }
            if let Err(e) = poll(&mut fds, None) {
                if e == rustix::io::Errno::INTR {
                    continue;
                }
                break 255;
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            self.pump(&ready[2..2 + n], &mut buf);
            if self.attach.is_some() {
                self.serve_attach(&ready[2 + n..], &mut buf);
            }
            if ready[1] {
                let _ = process::read_signalfd(self.sigfd.as_fd());
            }
            if let Some(code) = self.reap() {
                break code;
            }
        };
        // Whatever the container wrote last is still in the pipes: drain it, briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.streams.is_empty() && Instant::now() < deadline {
            let mut fds: Vec<PollFd> = self
                .streams
                .iter()
                .map(|(fd, _)| PollFd::new(fd, PollFlags::IN))
                .collect();
            let timeout = rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            };
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            self.pump(&ready, &mut buf);
        }
        for (_, lb) in self.streams.iter_mut() {
            lb.flush(&mut self.log);
        }
        code
    }

    /// Accepts an attaching client (replacing the previous one) and applies its input frames.
    fn serve_attach(&mut self, ready: &[bool], buf: &mut [u8]) {
        let (Some(l), Some((master, _))) = (&self.attach, self.streams.first()) else {
            return;
        };
        let client_ready = ready.get(1).copied().unwrap_or(false);
        if client_ready {
            if let Some((c, frames)) = self.client.as_mut() {
                match rustix::io::read(&*c, &mut *buf) {
                    Ok(0) | Err(_) => self.client = None,
                    Ok(n) => frames.feed(&buf[..n], master),
                }
            }
        }
        if ready.first().copied().unwrap_or(false) {
            if let Ok((c, _)) = l.accept() {
                let _ = c.set_nonblocking(false);
                self.client = Some((c, Frames::default()));
            }
        }
    }

    /// Reads the streams that are ready; drops those at their end.
    fn pump(&mut self, ready: &[bool], buf: &mut [u8]) {
        let mut closed = Vec::new();
        for (i, (fd, lb)) in self.streams.iter_mut().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            match rustix::io::read(&*fd, &mut *buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    lb.push(&buf[..n], &mut self.log);
                    if let Some((c, _)) = self.client.as_mut() {
                        if std::io::Write::write_all(c, &buf[..n]).is_err() {
                            self.client = None;
                        }
                    }
                }
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            let (_, mut lb) = self.streams.remove(i);
            lb.flush(&mut self.log);
        }
    }

    /// Reaps every ended child (we are a subreaper); the init's exit code once it has ended.
    fn reap(&mut self) -> Option<i32> {
        let mut init = None;
        while let Ok(Some((pid, status))) = process::try_wait_any() {
            if pid == self.pid {
                init = Some(status.code());
            }
        }
        init
    }
}

/// Records the exit and removes the runtime's state of the container.
fn finish(a: &Args, code: i32) {
    let rec = format!(
        "{{\"exit_code\":{code},\"finished_at\":\"{}\"}}\n",
        condo_runtime::state::now_rfc3339()
    );
    let _ = condo_runtime::state::write_atomic(&a.dir.join(EXIT_FILE), rec.as_bytes());
    let _ = condo_runtime::delete::delete(&a.runtime_root, &a.id, true);
    while let Ok(Some(_)) = process::try_wait_any() {}
    let _ = std::fs::remove_file(Path::new(&a.dir).join(PID_FILE));
    let _ = std::fs::remove_file(Path::new(&a.dir).join(ATTACH_SOCKET));
}
