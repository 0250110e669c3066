//! Freeze, thaw, list and kill the processes of a cgroup.

use crate::error::Error;
use crate::fsutil::{children, read, read_opt, write_ctl};
use crate::Cgroup;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether a cgroup's processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    /// Running (also while a freeze is still in progress).
    Thawed,
    /// Every process is frozen.
    Frozen,
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

fn backoff(delay: &mut Duration) {
    std::thread::sleep(*delay);
    *delay = (*delay * 2).min(Duration::from_millis(10));
}

fn pids_in(dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    if let Some(s) = read_opt(dir, "cgroup.procs")? {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for child in children(dir) {
        pids_in(&child, out)?;
    }
    Ok(())
}

impl Cgroup {
    fn freezer_v1(&self) -> Option<&Path> {
        self.v1_dir("freezer")
    }

    /// Freeze every process and wait until the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<(), Error> {
        let start = Instant::now();
        let mut delay = Duration::from_micros(100);
        if let Some(dir) = self.freezer_v1() {
            write_ctl(dir, "freezer.state", "FROZEN")?;
            loop {
                let s = read(dir, "freezer.state")?;
                if s.trim() == "FROZEN" {
                    return Ok(());
                }
                if start.elapsed() > FREEZE_TIMEOUT {
                    let _ = write_ctl(dir, "freezer.state", "THAWED");
                    return Err(Error::Timeout(format!("freezing {}", dir.display())));
                }
                backoff(&mut delay);
                // A task that was forking may have escaped the first pass.
                write_ctl(dir, "freezer.state", "FROZEN")?;
            }
        }
        let Some(dir) = self.unified_dir() else {
            return Err(Error::NoController {
                what: "freeze",
                controller: "freezer",
            });
        };
        write_ctl(dir, "cgroup.freeze", "1")?;
        loop {
            let ev = read(dir, "cgroup.events")?;
            if crate::fsutil::keyed(&ev, "frozen") == Some(1) {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                let _ = write_ctl(dir, "cgroup.freeze", "0");
                return Err(Error::Timeout(format!("freezing {}", dir.display())));
            }
            backoff(&mut delay);
        }
    }

    /// Let every process run again.
    pub fn thaw(&self) -> Result<(), Error> {
        if let Some(dir) = self.freezer_v1() {
            return write_ctl(dir, "freezer.state", "THAWED");
        }
        match self.unified_dir() {
            Some(dir) => write_ctl(dir, "cgroup.freeze", "0"),
            None => Err(Error::NoController {
                what: "thaw",
                controller: "freezer",
            }),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn freezer_state(&self) -> Result<FreezerState, Error> {
        if let Some(dir) = self.freezer_v1() {
            let s = read(dir, "freezer.state")?;
            return Ok(if s.trim() == "FROZEN" {
                FreezerState::Frozen
            } else {
                FreezerState::Thawed
            });
        }
        let Some(dir) = self.unified_dir() else {
            return Err(Error::NoController {
                what: "freezer state",
                controller: "freezer",
            });
        };
        let ev = read(dir, "cgroup.events")?;
        Ok(if crate::fsutil::keyed(&ev, "frozen") == Some(1) {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        })
    }

    /// Every process in the cgroup and its children.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let dir = ["pids", "freezer", "memory"]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.unified_dir())
            .or_else(|| self.hierarchies().first().map(|h| h.dir.as_path()));
        let mut out = Vec::new();
        if let Some(d) = dir {
            pids_in(d, &mut out)?;
        }
        Ok(out)
    }

    /// Send `signal` to every process; for SIGKILL, keep at it until the cgroup is empty.
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            Error::io(
                "signal",
                self.hierarchies()
                    .first()
                    .map(|h| h.dir.clone())
                    .unwrap_or_default(),
                std::io::Error::from_raw_os_error(libc::EINVAL),
            )
        })?;
        let start = Instant::now();
        if signal == libc::SIGKILL {
            if let Some(dir) = self
                .unified_dir()
                .filter(|d| d.join("cgroup.kill").exists())
            {
                write_ctl(dir, "cgroup.kill", "1")?;
                let mut delay = Duration::from_micros(100);
                // A hybrid host's v1 hierarchies may hold a task that never entered the
                // unified one; after a short wait fall through to signalling one by one.
                while start.elapsed() < Duration::from_secs(1) {
                    if self.pids()?.is_empty() {
                        return Ok(());
                    }
                    backoff(&mut delay);
                }
            }
        }
        let can_freeze = self.freezer_v1().is_some() || self.unified_dir().is_some();
        let was_frozen = can_freeze && self.freezer_state()? == FreezerState::Frozen;
        let mut delay = Duration::from_micros(100);
        loop {
            // Frozen, no task can fork a new one behind our back.
            let frozen_here = can_freeze && !was_frozen && self.freeze().is_ok();
            for pid in self.pids()? {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, sig);
                }
            }
            if frozen_here || (was_frozen && signal == libc::SIGKILL) {
                self.thaw()?;
            }
            if signal != libc::SIGKILL {
                return Ok(());
            }
            backoff(&mut delay);
            if self.pids()?.is_empty() {
                return Ok(());
            }
            if start.elapsed() > KILL_TIMEOUT {
                return Err(Error::Timeout(format!(
                    "killing every process of cgroup {}",
                    self.path()
                )));
            }
        }
    }
}
