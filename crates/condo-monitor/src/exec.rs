//! `condo-monitor exec`: one more process in a running container, for condod.
//!
//! The process (an OCI `process` object) comes as JSON in `CONDO_MONITOR_PROCESS`. Without
//! `--tty` the process shares our stdio and our exit code is its own. With `--tty` our stdin
//! carries frames (`[kind u8][length u32 BE][payload]`: 0 input, 1 resize as rows and columns
//! u16 BE, 2 end of input) and our stdout the raw terminal output. A failure of our own exits
//! with [`OWN_FAILURE`] and a line on stderr that starts with `condo-monitor exec:`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use condo_runtime::exec::{exec, ExecOptions};
use condo_runtime::spec::Process;
use rustix::event::{poll, PollFd, PollFlags};

use crate::Args;
use condo_monitor::frames::Frames;

/// Environment variable holding the process JSON.
pub const PROCESS_ENV: &str = "CONDO_MONITOR_PROCESS";
/// Exit code for a failure of the helper itself (as opposed to the process's own code).
pub const OWN_FAILURE: i32 = 125;

/// Runs the subcommand; returns the exit code.
pub fn main(a: &Args) -> i32 {
    match run(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("condo-monitor exec: {e}");
            OWN_FAILURE
        }
    }
}

fn run(a: &Args) -> Result<i32, String> {
    let raw = std::env::var(PROCESS_ENV).map_err(|_| format!("{PROCESS_ENV} is not set"))?;
    std::env::remove_var(PROCESS_ENV);
    let process: Process = serde_json::from_str(&raw).map_err(|e| format!("bad process: {e}"))?;
    let mut opts = ExecOptions {
        root: a.runtime_root.clone(),
        id: a.id.clone(),
        process,
        console_socket: None,
        pid_file: None,
        detach: false,
        preserve_fds: 0,
        ignore_paused: false,
        pidfd_socket: None,
    };
    if !a.tty {
        opts.process.terminal = false;
        return exec(&opts).map_err(|e| e.to_string());
    }
    opts.process.terminal = true;
    let tag = format!(
        "condo-exec-{}-{}",
        std::process::id(),
        condo_runtime::state::now_rfc3339()
    );
    let sock_path = std::env::temp_dir().join(format!("{tag}.sock"));
    let pid_path = std::env::temp_dir().join(format!("{tag}.pid"));
    let listener = std::os::unix::net::UnixListener::bind(&sock_path)
        .map_err(|e| format!("console socket: {e}"))?;
    opts.console_socket = Some(sock_path.clone());
    opts.pid_file = Some(pid_path.clone());
    opts.detach = true;
    let r = exec(&opts)
        .map_err(|e| e.to_string())
        .and_then(|_| receive(&listener, &pid_path));
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(&pid_path);
    let (master, pid) = r?;
    relay(&master, pid)
}

/// Takes the terminal master from the console socket and the process's pid from its file.
fn receive(
    l: &std::os::unix::net::UnixListener,
    pid_path: &PathBuf,
) -> Result<(OwnedFd, i32), String> {
    let (s, _) = l.accept().map_err(|e| format!("console socket: {e}"))?;
    let mut buf = [0u8; 256];
    let (_, mut fds) = condo_sys::fdpass::recv_with_fds(s.as_fd(), &mut buf, 1)
        .map_err(|e| format!("console socket: {e}"))?;
    let master = fds
        .pop()
        .ok_or("no terminal came through the console socket")?;
    let pid = std::fs::read_to_string(pid_path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or("no pid file from exec")?;
    Ok((master, pid))
}

/// Copies framed input to the terminal and its output to stdout until the process ends.
fn relay(master: &OwnedFd, pid: i32) -> Result<i32, String> {
    let pidfd = condo_sys::process::pidfd_open(pid).map_err(|e| format!("pidfd: {e}"))?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut frames = Frames::default();
    let mut stdin_open = true;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::new(master, PollFlags::IN),
        ];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[1] {
            match rustix::io::read(master, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
                }
                _ => {}
            }
        }
        if ready.get(2).copied().unwrap_or(false) {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    // The client went away: hang up the terminal's process.
                    stdin_open = false;
                    let _ = condo_sys::process::pidfd_send_signal(pidfd.as_fd(), libc::SIGHUP);
                }
                Ok(n) => frames.feed(&buf[..n], master),
            }
        }
        if ready[0] {
            // Last output, then the code.
            let mut pfd = [PollFd::new(master, PollFlags::IN)];
            let zero = rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            while matches!(poll(&mut pfd, Some(&zero)), Ok(n) if n > 0) {
                match rustix::io::read(master, &mut buf) {
                    Ok(n) if n > 0 => {
                        let _ = out.write_all(&buf[..n]);
                    }
                    _ => break,
                }
            }
            let _ = out.flush();
            let status = condo_sys::process::waitpid(pid).map_err(|e| format!("waitpid: {e}"))?;
            return Ok(status.code());
        }
    }
}
