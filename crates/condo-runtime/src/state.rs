//! The state directory of a container and the status derived from the kernel.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

/// File in the state dir that the init listens on until `start`.
pub const EXEC_SOCKET: &str = "exec.sock";
/// The saved state.
pub const STATE_FILE: &str = "state.json";
/// A copy of the config the container was created from.
pub const CONFIG_FILE: &str = "config.json";

/// Lifecycle status, as the spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// The user program runs.
    Running,
    /// Frozen.
    Paused,
    /// The init has ended.
    Stopped,
}

impl Status {
    /// The spec's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// Container id.
    pub id: String,
    /// Host pid of the init.
    pub pid: i32,
    /// The init's start time (clock ticks since boot) to tell it from a reused pid.
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// User who created it (empty for root).
    pub owner: String,
    /// Annotations from the config.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup.
    pub cgroup: condo_cgroups::SavedCgroup,
    /// The container has its own pid namespace.
    #[serde(default)]
    pub own_pid_ns: bool,
}

/// The state document of the spec, in the exact shape engines parse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Spec version.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid (0 once stopped).
    pub pid: i32,
    /// Status.
    pub status: Status,
    /// Bundle path.
    pub bundle: String,
    /// Rootfs path.
    pub rootfs: String,
    /// Creation time.
    pub created: String,
    /// Owner.
    pub owner: String,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

/// A container's state directory under the runtime root.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// `<root>/<id>`.
    pub path: PathBuf,
    /// Container id.
    pub id: String,
}

/// Checks a container id: no path separators, no dot names, printable.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "invalid container id \"{id}\": use letters, digits and - _ . + :"
        )))
    }
}

impl StateDir {
    /// The state dir of `id` under `root` (not checked for existence).
    pub fn new(root: &Path, id: &str) -> Result<StateDir> {
        check_id(id)?;
        Ok(StateDir {
            path: root.join(id),
            id: id.to_string(),
        })
    }

    /// Creates the directory; fails when the container exists.
    pub fn create(&self) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)
                .ctx(|| format!("cannot create state root {}", parent.display()))?;
        }
        match fs::create_dir(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(self.id.clone()))
            }
            Err(e) => {
                return Err(e).ctx(|| format!("cannot create {}", self.path.display()));
            }
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o711))
            .ctx(|| format!("cannot chmod {}", self.path.display()))?;
        Ok(())
    }

    /// Reads the saved state; `NotFound` when there is none.
    pub fn load(&self) -> Result<Saved> {
        let p = self.path.join(STATE_FILE);
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(self.id.clone()))
            }
            Err(e) => return Err(e).ctx(|| format!("cannot read {}", p.display())),
        };
        serde_json::from_slice(&data)
            .map_err(|e| Error::Other(format!("corrupt state {}: {e}", p.display())))
    }

    /// Writes the saved state atomically.
    pub fn save(&self, s: &Saved) -> Result<()> {
        let data = serde_json::to_vec(s).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&self.path.join(STATE_FILE), &data)
    }

    /// Removes the directory and everything in it.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("cannot remove {}", self.path.display())),
        }
    }

    /// Path of a file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// Writes `data` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).ctx(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(data)
        .ctx(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("cannot rename to {}", path.display()))
}

/// The start time (field 22 of /proc/PID/stat) and whether the process is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    // Field 3 was `state`; start time is field 22, so 19 more after it.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

impl Saved {
    /// Whether the init still runs (same pid, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        matches!(proc_start_time(self.pid), Some((t, false)) if t == self.start_time)
    }

    /// The status, read from the kernel and the state dir.
    pub fn status(&self, dir: &StateDir) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if dir.file(EXEC_SOCKET).exists() {
            return Status::Created;
        }
        let cg = condo_cgroups::Cgroup::from_saved(self.cgroup.clone());
        if matches!(cg.freezer_state(), Ok(condo_cgroups::FreezerState::Frozen)) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The spec's state document.
    pub fn state(&self, status: Status) -> State {
        State {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.to_string_lossy().into_owned(),
            rootfs: self.rootfs.to_string_lossy().into_owned(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// The current time in RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Formats seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_795_000_000, 5), "2026-11-18T11:06:40.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.3").is_ok());
        assert!(check_id("../x").is_err());
        assert!(check_id("").is_err());
        assert!(check_id("..").is_err());
    }

    #[test]
    fn reads_own_start_time() {
        let (t, zombie) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0);
        assert!(!zombie);
    }
}
