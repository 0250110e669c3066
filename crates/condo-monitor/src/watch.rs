//! The long-lived half of a monitor: copies the container's output to its log, serves the
//! terminal's attach socket, reaps, records the exit and has the runtime state removed.
//!
//! `condo-monitor run` creates the container, then replaces itself (same pid, so it stays the
//! init's parent) with the small `condo-monitor-watch` executable, handing over its
//! descriptors by number: the runtime library's code and heap are not part of the process
//! that lives as long as the container.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use condo_sys::process::{self, Forked};
use rustix::event::{poll, PollFd, PollFlags};

use crate::frames::Frames;
use crate::logfile::{LineBuf, Log};

/// File with the monitor's pid and start time.
pub const PID_FILE: &str = "monitor.pid";
/// File with the container's exit code and time, written once it has ended.
pub const EXIT_FILE: &str = "exit.json";
/// Socket a client connects to for the terminal of a container that has one.
pub const ATTACH_SOCKET: &str = "attach.sock";
/// The watcher's executable, expected beside `condo-monitor`.
pub const WATCH_BIN: &str = "condo-monitor-watch";

/// What the watcher is given: the container and the descriptors it inherits.
#[derive(Debug, Default)]
pub struct Handoff {
    /// Host pid of the container's init (our child).
    pub pid: i32,
    /// The monitor's directory: log, exit file, pid file.
    pub dir: PathBuf,
    /// Largest size of one log file, bytes.
    pub log_max: u64,
    /// Rotated log files to keep.
    pub log_keep: u32,
    /// The runtime library's state root.
    pub runtime_root: PathBuf,
    /// The runtime container id.
    pub id: String,
    /// `condo-monitor` itself, run as `delete` once the container has ended.
    pub helper: PathBuf,
    /// Read ends of the container's stdout and stderr (or its terminal master alone).
    pub streams: Vec<(RawFd, &'static str)>,
    /// The attach socket's listener, with a terminal.
    pub attach: Option<RawFd>,
}

impl Handoff {
    /// The watcher's command-line arguments.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let mut put = |k: &str, val: OsString| {
            v.push(k.into());
            v.push(val);
        };
        put("--pid", self.pid.to_string().into());
        put("--dir", self.dir.clone().into());
        put("--log-max", self.log_max.to_string().into());
        put("--log-keep", self.log_keep.to_string().into());
        put("--runtime-root", self.runtime_root.clone().into());
        put("--id", self.id.clone().into());
        put("--helper", self.helper.clone().into());
        for (fd, name) in &self.streams {
            put(&format!("--{name}"), fd.to_string().into());
        }
        if let Some(fd) = self.attach {
            put("--attach", fd.to_string().into());
        }
        v
    }

    /// Reads what [`Handoff::to_args`] wrote.
    pub fn parse(args: &[String]) -> Result<Handoff, String> {
        let mut h = Handoff::default();
        for pair in args.chunks(2) {
            let [k, v] = pair else {
                return Err(format!("{} needs a value", pair[0]));
            };
            let num = |what: &str| -> Result<i64, String> {
                v.parse().map_err(|_| format!("{what}: not a number"))
            };
            match k.as_str() {
                "--pid" => h.pid = num(k)? as i32,
                "--dir" => h.dir = v.into(),
                "--log-max" => h.log_max = num(k)? as u64,
                "--log-keep" => h.log_keep = num(k)? as u32,
                "--runtime-root" => h.runtime_root = v.into(),
                "--id" => h.id = v.clone(),
                "--helper" => h.helper = v.into(),
                "--stdout" => h.streams.push((num(k)? as RawFd, "stdout")),
                "--stderr" => h.streams.push((num(k)? as RawFd, "stderr")),
                "--attach" => h.attach = Some(num(k)? as RawFd),
                _ => return Err(format!("unknown option {k}")),
            }
        }
        if h.pid <= 0 || h.id.is_empty() || h.streams.is_empty() {
            return Err("--pid, --id and a stream are required".into());
        }
        Ok(h)
    }

    /// Replaces this process with the watcher at `bin`; returns only if that failed, with
    /// every descriptor still ours.
    pub fn exec(&self, bin: &Path) -> std::io::Error {
        let fds = self.streams.iter().map(|(fd, _)| *fd).chain(self.attach);
        for fd in fds {
            if let Err(e) = process::clear_cloexec(fd) {
                return e;
            }
        }
        exec(bin, &self.to_args())
    }
}

/// Replaces this process with `bin` and `args`, with an empty environment (neither the
/// watcher nor the helper reads one); returns only on failure. No `std::process::Command`:
/// the watcher stays small.
fn exec(bin: &Path, args: &[OsString]) -> std::io::Error {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &std::ffi::OsStr| CString::new(s.as_bytes());
    let (Ok(path), Ok(argv)) = (
        c(bin.as_os_str()),
        std::iter::once(bin.as_os_str())
            .chain(args.iter().map(|a| a.as_os_str()))
            .map(c)
            .collect::<Result<Vec<_>, _>>(),
    ) else {
        return std::io::Error::from(std::io::ErrorKind::InvalidInput);
    };
    let argv: Vec<&std::ffi::CStr> = argv.iter().map(|a| a.as_c_str()).collect();
    condo_sys::execve(&path, &argv, &[])
}

/// What the loop watches.
pub struct Watch {
    pid: i32,
    sigfd: OwnedFd,
    streams: Vec<(OwnedFd, LineBuf)>,
    log: Log,
    /// With a terminal: the attach socket and the one client attached to it.
    attach: Option<UnixListener>,
    client: Option<(UnixStream, Frames)>,
}

impl Watch {
    /// Takes over the descriptors of `h` (which must be open and ours alone).
    pub fn adopt(h: &Handoff) -> Result<Watch, String> {
        let log = Log::open(&h.dir, h.log_max, h.log_keep)
            .map_err(|e| format!("cannot open the log: {e}"))?;
        process::block_signals(&[libc::SIGCHLD]).map_err(|e| format!("sigprocmask: {e}"))?;
        let sigfd = process::signalfd(&[libc::SIGCHLD]).map_err(|e| format!("signalfd: {e}"))?;
        let own = |fd: RawFd| {
            process::adopt_inherited_fd(fd).map_err(|e| format!("descriptor {fd}: {e}"))
        };
        let streams = h
            .streams
            .iter()
            .map(|(fd, name)| Ok((own(*fd)?, LineBuf::new(name))))
            .collect::<Result<_, String>>()?;
        let attach = match h.attach {
            Some(fd) => {
                let l = UnixListener::from(own(fd)?);
                let _ = l.set_nonblocking(true);
                Some(l)
            }
            None => None,
        };
        Ok(Watch {
            pid: h.pid,
            sigfd,
            streams,
            log,
            attach,
            client: None,
        })
    }

    /// Copies output to the log until the init ends; returns its exit code.
    pub fn supervise(&mut self) -> i32 {
        // One pipe buffer is 64 KiB; reading a quarter of it at a time costs few more reads
        // and keeps 16 KiB out of a process that lives as long as the container. Reads go to
        // the spare capacity, never zeroed: a page of it is touched only once output fills it
        // (a quiet container's monitor never maps it).
        let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
        let code = loop {
            // The init may have ended before SIGCHLD was blocked: look before each wait.
            if let Some(code) = self.reap() {
                break code;
            }
            let mut fds = vec![PollFd::new(&self.sigfd, PollFlags::IN)];
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
            self.pump(&ready[1..1 + n], &mut buf);
            if self.attach.is_some() {
                self.serve_attach(&ready[1 + n..], &mut buf);
            }
            if ready[0] {
                let _ = process::read_signalfd(self.sigfd.as_fd());
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
    fn serve_attach(&mut self, ready: &[bool], buf: &mut Vec<u8>) {
        let (Some(l), Some((master, _))) = (&self.attach, self.streams.first()) else {
            return;
        };
        let client_ready = ready.get(1).copied().unwrap_or(false);
        if client_ready {
            if let Some((c, frames)) = self.client.as_mut() {
                buf.clear();
                match rustix::io::read(&*c, rustix::buffer::spare_capacity(buf)) {
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
    fn pump(&mut self, ready: &[bool], buf: &mut Vec<u8>) {
        let mut closed = Vec::new();
        for (i, (fd, lb)) in self.streams.iter_mut().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            buf.clear();
            match rustix::io::read(&*fd, rustix::buffer::spare_capacity(buf)) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    lb.push(&buf[..n], &mut self.log);
                    if let Some((c, _)) = self.client.as_mut() {
                        if send_all(c, &buf[..n]).is_err() {
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

/// Writes all of `data` to an attached client; a client gone is an error, not a SIGPIPE (the
/// watcher starts without the Rust runtime, which would ignore that signal).
fn send_all(c: &UnixStream, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        match rustix::net::send(c, data, rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Records the exit, has the runtime's state of the container removed, and clears our files.
pub fn finish(h: &Handoff, code: i32) {
    let rec = format!(
        "{{\"exit_code\":{code},\"finished_at\":\"{}\"}}\n",
        condo_runtime::state::now_rfc3339()
    );
    let _ = condo_runtime::state::write_atomic(&h.dir.join(EXIT_FILE), rec.as_bytes());
    // The runtime library's delete runs in `condo-monitor delete`, a process of its own.
    match process::fork() {
        Ok(Forked::Child) => {
            let args: Vec<OsString> = vec![
                "delete".into(),
                "--runtime-root".into(),
                h.runtime_root.clone().into(),
                "--id".into(),
                h.id.clone().into(),
            ];
            let _ = exec(&h.helper, &args);
            condo_sys::exit_now(1);
        }
        Ok(Forked::Parent { pid, .. }) => {
            let _ = process::waitpid(pid);
        }
        Err(_) => {}
    }
    while let Ok(Some(_)) = process::try_wait_any() {}
    let _ = std::fs::remove_file(h.dir.join(PID_FILE));
    let _ = std::fs::remove_file(h.dir.join(ATTACH_SOCKET));
}
