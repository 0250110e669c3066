//! Running lifecycle hooks with the container state on stdin, with timeouts.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::spec::Hook;

/// Runs `hooks` in order; the first failure stops the rest and is returned.
pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state_json)
            .map_err(|e| Error::Hook(format!("hooks.{kind}[{i}] ({}): {e}", h.path)))?;
    }
    Ok(())
}

/// Runs `hooks` in order, ignoring failures (for poststart/poststop semantics that only warn).
pub fn run_all_lenient(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(h, state_json) {
            warnings.push(format!("hooks.{kind}[{i}] ({}): {e}", h.path));
        }
    }
    warnings
}

fn run(h: &Hook, state_json: &[u8]) -> std::result::Result<(), String> {
    let mut cmd = Command::new(&h.path);
    if h.args.len() > 1 {
        cmd.args(&h.args[1..]);
    }
    if let Some(a0) = h.args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(a0);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not an error.
        let _ = stdin.write_all(state_json);
    }
    let status = match h.timeout {
        None => child.wait().map_err(|e| e.to_string())?,
        Some(t) => {
            let pidfd =
                condo_sys::process::pidfd_open(child.id() as i32).map_err(|e| e.to_string())?;
            let mut fds = [rustix::event::PollFd::new(
                &pidfd,
                rustix::event::PollFlags::IN,
            )];
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(t as u64);
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    let _ = condo_sys::process::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                    let _ = child.wait();
                    return Err(format!("timed out after {t}s"));
                }
                let ts = rustix::fs::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                };
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(n) if n > 0 => break,
                    Ok(_) => continue,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            }
            child.wait().map_err(|e| e.to_string())?
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("exited with {status}"))
    }
}
