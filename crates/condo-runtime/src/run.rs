//! `run`: create and start in one go; in the foreground, wait, relay signals and the
//! terminal, then delete.

use std::os::fd::{AsFd, OwnedFd};

use crate::create::{create, CreateOptions, Created};
use crate::error::{Error, IoContext, Result};
use crate::state::Status;
use crate::sync::Tag;

/// Signals relayed from the runtime to the container in the foreground.
pub const RELAYED: [i32; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
];

/// Creates and starts the container; with `detach` returns at once (exit code 0),
/// otherwise waits for it, deletes it and returns its exit code.
pub fn run(opts: &CreateOptions, detach: bool) -> Result<i32> {
    run_reporting(opts, detach, &mut |_| {})
}

/// [`run`], handing each warning (limits the host could not honour exactly) to `warn`.
pub fn run_reporting(
    opts: &CreateOptions,
    detach: bool,
    warn: &mut dyn FnMut(&str),
) -> Result<i32> {
    // Block relayed signals before the child exists so none is lost in between.
    let old_mask = condo_sys::process::block_signals(&RELAYED).ctx(|| "sigprocmask".into())?;
    let created = create(opts, !detach || opts.console_socket.is_none());
    let _ = condo_sys::process::set_signal_mask(&old_mask);
    let c = created?;
    for w in &c.warnings {
        warn(w);
    }
    if detach && c.console.is_some() {
        // Nobody would hold the terminal once we return.
        cleanup(&c);
        return Err(Error::Other("--console-socket is required when process.terminal is true and the container is detached".into()));
    }
    let result = start_foreground(&c);
    if let Err(e) = result {
        cleanup(&c);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let sigs = condo_sys::process::block_signals(&RELAYED).ctx(|| "sigprocmask".into())?;
    let code = wait_child(c.saved.pid, &c.pidfd, c.console.as_ref());
    let _ = condo_sys::process::set_signal_mask(&sigs);
    cleanup(&c);
    code
}

/// Starts a container created with `foreground` (the sync channel kept): lets its init execute
/// the program, then runs the poststart hooks.
pub fn start_foreground(c: &Created) -> Result<()> {
    c.chan
        .send(Tag::Start, &[], &[])
        .ctx(|| "cannot start the container init".into())?;
    // The init's end closes on a successful execve; a message means it failed.
    match c.chan.recv() {
        Err(_) => {}
        Ok(m) if m.tag == Tag::Error => {
            return Err(Error::Init(String::from_utf8_lossy(&m.data).into_owned()))
        }
        Ok(_) => {}
    }
    if let Some(h) = c.spec.hooks.as_ref().filter(|h| !h.poststart.is_empty()) {
        let st = serde_json::to_vec(&c.saved.state(Status::Running)).unwrap_or_default();
        crate::hooks::run_all("poststart", &h.poststart, &st)?;
    }
    Ok(())
}

fn cleanup(c: &Created) {
    let cont = crate::container::Container {
        dir: c.dir.clone(),
        saved: c.saved.clone(),
    };
    let cg = cont.cgroup();
    if c.saved.alive() {
        let _ = crate::delete::stop_all(&cont, &cg);
    }
    let _ = condo_sys::process::try_wait(c.saved.pid);
    let _ = crate::delete::destroy(&cont, &cg);
}

/// Waits for the child `pid`, relaying signals and (when there is one) the terminal; the
/// relayed signals must be blocked by the caller.
pub fn wait_child(pid: i32, pidfd: &OwnedFd, console: Option<&OwnedFd>) -> Result<i32> {
    use rustix::event::{poll, PollFd, PollFlags};
    let sfd = condo_sys::process::signalfd(&RELAYED).ctx(|| "signalfd".into())?;
    let mut tty = console.map(TtyRelay::new).transpose()?;
    loop {
        let mut fds = vec![
            PollFd::new(pidfd, PollFlags::IN),
            PollFd::new(&sfd, PollFlags::IN),
        ];
        let stdin = std::io::stdin();
        if let Some(t) = &tty {
            fds.push(PollFd::new(t.master, PollFlags::IN));
            if t.stdin_open {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::Other(format!("poll: {e}"))),
        }
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !ready[1].is_empty() {
            if let Ok(sig) = condo_sys::process::read_signalfd(sfd.as_fd()) {
                if sig == libc::SIGWINCH {
                    if let Some(t) = &tty {
                        t.copy_winsize();
                    }
                } else {
                    let _ = condo_sys::process::pidfd_send_signal(pidfd.as_fd(), sig);
                }
            }
        }
        if let Some(t) = tty.as_mut() {
            if ready.len() > 2 && !ready[2].is_empty() && !t.pump_out() {
                // The terminal closed: the program is ending.
            }
            if ready.len() > 3 && !ready[3].is_empty() {
                t.pump_in();
            }
        }
        if !ready[0].is_empty() {
            if let Some(t) = tty.as_mut() {
                while t.pump_out() {}
            }
            let status = condo_sys::process::waitpid(pid).ctx(|| "waitpid".into())?;
            return Ok(status.code());
        }
    }
}

/// Copies between the caller's terminal and the container's pty master.
struct TtyRelay<'a> {
    master: &'a OwnedFd,
    stdin_open: bool,
    saved: Option<rustix::termios::Termios>,
}

impl<'a> TtyRelay<'a> {
    fn new(master: &'a OwnedFd) -> Result<TtyRelay<'a>> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        let r = TtyRelay {
            master,
            stdin_open: true,
            saved,
        };
        r.copy_winsize();
        Ok(r)
    }

    fn copy_winsize(&self) {
        if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin()) {
            let _ = condo_sys::process::set_winsize(self.master.as_fd(), ws.ws_row, ws.ws_col);
        }
    }

    /// Copies what the container wrote; false when nothing more comes.
    fn pump_out(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        // Non-blocking peek: poll said readable, or we are draining at exit.
        let mut pfd = [rustix::event::PollFd::new(
            self.master,
            rustix::event::PollFlags::IN,
        )];
        if !matches!(rustix::event::poll(&mut pfd, Some(&rustix::fs::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
        {
            return false;
        }
        match rustix::io::read(self.master, &mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                let _ = write_all(std::io::stdout(), &buf[..n]);
                true
            }
        }
    }

    fn pump_in(&mut self) {
        let mut buf = [0u8; 8192];
        match rustix::io::read(std::io::stdin(), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => {
                let _ = write_all(self.master, &buf[..n]);
            }
        }
    }
}

impl Drop for TtyRelay<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn write_all<F: AsFd>(fd: F, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(&fd, data)?;
        data = &data[n..];
    }
    Ok(())
}

/// Makes this process reap orphans of the container it waits for.
pub fn become_subreaper() -> Result<()> {
    condo_sys::process::set_child_subreaper().ctx(|| "cannot become a subreaper".into())
}
