//! Pseudo-terminals for container processes: opened in the container's own devpts, the master
//! handed to the caller, the peer made the process's controlling terminal.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::OFlags;

use crate::error::{Error, Result};
use crate::spec::ConsoleSize;
use crate::sync::{Channel, Tag};

/// A terminal pair.
pub struct Pty {
    /// The side the caller reads and writes.
    pub master: OwnedFd,
    /// The process's side.
    pub peer: OwnedFd,
}

fn fail(what: &str, e: std::io::Error) -> Error {
    Error::Init(format!("{what}: {e}"))
}

/// Opens a terminal in the devpts of the tree rooted at `root` (`/dev/pts/ptmx`, or `/dev/ptmx`).
pub fn open(root: BorrowedFd<'_>, size: Option<&ConsoleSize>) -> Result<Pty> {
    let master = crate::fsutil::open_in_root(root, "/dev/pts/ptmx", OFlags::RDWR | OFlags::NOCTTY)
        .or_else(|_| crate::fsutil::open_in_root(root, "/dev/ptmx", OFlags::RDWR | OFlags::NOCTTY))
        .map_err(|e| fail("cannot open /dev/pts/ptmx (mount devpts at /dev/pts)", e))?;
    condo_sys::process::unlock_pty(master.as_fd())
        .map_err(|e| fail("cannot unlock the terminal", e))?;
    let peer = condo_sys::process::open_pty_peer(master.as_fd())
        .map_err(|e| fail("cannot open the terminal", e))?;
    if let Some(cs) = size {
        condo_sys::process::set_winsize(peer.as_fd(), cs.height as u16, cs.width as u16)
            .map_err(|e| fail("process.consoleSize", e))?;
    }
    Ok(Pty { master, peer })
}

/// Sends the master to `--console-socket`, or to the runtime over the sync channel.
pub fn hand_over(master: &OwnedFd, console_socket: Option<&OwnedFd>, chan: &Channel) -> Result<()> {
    match console_socket {
        Some(s) => condo_sys::fdpass::send_with_fds(s.as_fd(), b"/dev/ptmx", &[master.as_raw_fd()])
            .map_err(|e| fail("cannot send the terminal to --console-socket", e)),
        None => chan
            .send(Tag::Console, &[], &[master.as_raw_fd()])
            .map_err(|e| fail("cannot send the terminal", e)),
    }
}

/// Makes `peer` the controlling terminal of a new session and the process's stdio.
pub fn attach(peer: &OwnedFd) -> Result<()> {
    condo_sys::process::setsid().map_err(|e| fail("setsid", e))?;
    condo_sys::process::set_controlling_terminal(peer.as_fd())
        .map_err(|e| fail("cannot set the controlling terminal", e))?;
    for n in 0..3 {
        condo_sys::process::dup_onto(peer.as_raw_fd(), n)
            .map_err(|e| fail("cannot attach the terminal", e))?;
    }
    Ok(())
}
