//! OOM kill counting and notification.

use crate::error::Error;
use crate::fsutil::{keyed, read, write_ctl};
use crate::Cgroup;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// A file descriptor that becomes readable when the cgroup may have had an OOM kill.
#[derive(Debug)]
pub struct OomNotifier {
    fd: OwnedFd,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// v1: eventfd registered on memory.oom_control (kept open).
    EventFd { _control: OwnedFd, dir: PathBuf },
    /// v2: inotify on memory.events; `last` is the oom_kill count seen.
    Inotify { dir: PathBuf, last: u64 },
}

fn oom_kills_v2(dir: &std::path::Path) -> Result<u64, Error> {
    Ok(keyed(&read(dir, "memory.events")?, "oom_kill").unwrap_or(0))
}

impl OomNotifier {
    /// The descriptor to poll for readability.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Consume one event (blocking until there is one); true when it was an OOM kill,
    /// false for other changes (another counter moved, or the cgroup went away).
    pub fn consume(&mut self) -> Result<bool, Error> {
        match &mut self.kind {
            Kind::EventFd { dir, .. } => {
                let mut buf = [0u8; 8];
                rustix::io::read(&self.fd, &mut buf)
                    .map_err(|e| Error::io("read", dir.clone(), e.into()))?;
                // The eventfd also fires when the cgroup is removed.
                Ok(dir.join("memory.oom_control").exists())
            }
            Kind::Inotify { dir, last } => {
                let mut buf = [0u8; 4096];
                rustix::io::read(&self.fd, &mut buf)
                    .map_err(|e| Error::io("read", dir.clone(), e.into()))?;
                let now = match oom_kills_v2(dir) {
                    Ok(n) => n,
                    Err(_) => return Ok(false),
                };
                let fired = now > *last;
                *last = now;
                Ok(fired)
            }
        }
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Cgroup {
    /// How many processes the OOM killer has killed in this cgroup.
    pub fn oom_count(&self) -> Result<u64, Error> {
        match self.controller("memory") {
            Some((1, dir)) => Ok(keyed(&read(dir, "memory.oom_control")?, "oom_kill").unwrap_or(0)),
            Some((_, dir)) => oom_kills_v2(dir),
            None => Err(Error::NoController {
                what: "oom count",
                controller: "memory",
            }),
        }
    }

    /// A notifier that fires on OOM kills in this cgroup.
    pub fn oom_notifier(&self) -> Result<OomNotifier, Error> {
        match self.controller("memory") {
            Some((1, dir)) => {
                let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
                    .map_err(|e| Error::io("eventfd", dir, e.into()))?;
                let path = dir.join("memory.oom_control");
                let control = rustix::fs::open(
                    &path,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map_err(|e| Error::io("open", &path, e.into()))?;
                let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
                write_ctl(dir, "cgroup.event_control", &line)?;
                Ok(OomNotifier {
                    fd: efd,
                    kind: Kind::EventFd {
                        _control: control,
                        dir: dir.to_path_buf(),
                    },
                })
            }
            Some((_, dir)) => {
                use rustix::fs::inotify;
                let fd = inotify::init(inotify::CreateFlags::CLOEXEC)
                    .map_err(|e| Error::io("inotify_init", dir, e.into()))?;
                let path = dir.join("memory.events");
                inotify::add_watch(&fd, &path, inotify::WatchFlags::MODIFY)
                    .map_err(|e| Error::io("inotify_add_watch", &path, e.into()))?;
                let last = oom_kills_v2(dir)?;
                Ok(OomNotifier {
                    fd,
                    kind: Kind::Inotify {
                        dir: dir.to_path_buf(),
                        last,
                    },
                })
            }
            None => Err(Error::NoController {
                what: "oom notifier",
                controller: "memory",
            }),
        }
    }
}
