//! `kill`: signal a container's init, or every process in it.

use std::os::fd::AsFd;
use std::path::Path;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::state::Status;

/// Parses a signal given by number, by name, or by name without the SIG prefix.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::Other(format!("invalid signal \"{s}\"")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            if let Some(off) = name
                .strip_prefix("RTMIN+")
                .and_then(|n| n.parse::<i32>().ok())
            {
                return Ok(libc::SIGRTMIN() + off);
            }
            if let Some(off) = name
                .strip_prefix("RTMAX-")
                .and_then(|n| n.parse::<i32>().ok())
            {
                return Ok(libc::SIGRTMAX() - off);
            }
            return Err(Error::Other(format!("invalid signal \"{s}\"")));
        }
    };
    Ok(n)
}

/// Sends `sig` to the init of `id`, or to all its processes with `all`.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    let cg = c.cgroup();
    if status == Status::Stopped {
        if all {
            // Stray processes may outlive a stopped init without a pid namespace.
            cg.kill_all(sig)?;
            return Ok(());
        }
        return Err(c.wrong_status(status, "container not running"));
    }
    if all {
        cg.kill_all(sig)?;
    } else {
        let fd = condo_sys::process::pidfd_open(c.saved.pid)
            .map_err(|e| Error::Other(format!("container \"{id}\": cannot open its init: {e}")))?;
        // The pidfd pins the process: check it is still the init we started.
        if !c.saved.alive() {
            return Err(c.wrong_status(Status::Stopped, "container not running"));
        }
        condo_sys::process::pidfd_send_signal(fd.as_fd(), sig).map_err(|e| {
            Error::Other(format!("container \"{id}\": cannot signal its init: {e}"))
        })?;
    }
    if status == Status::Paused && matches!(sig, libc::SIGKILL | libc::SIGTERM) {
        let _ = cg.thaw();
    }
    Ok(())
}
