//! Talking to `condo-monitor`: starting one per container run, reading what it leaves in the
//! container's directory, and noticing when it ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::unix::AsyncFd;

/// The monitor's pid file (`PID STARTTIME`).
pub const PID_FILE: &str = "monitor.pid";
/// The monitor's record of the exit.
pub const EXIT_FILE: &str = "exit.json";
/// The monitor's socket for the terminal of a container that has one.
pub const ATTACH_SOCKET: &str = "attach.sock";
/// The helper's exit code for its own failures.
pub const EXEC_OWN_FAILURE: i32 = 125;
/// Environment variable the exec helper reads its process from.
pub const EXEC_PROCESS_ENV: &str = "CONDO_MONITOR_PROCESS";

/// Where things live under the daemon's root.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The daemon's root.
    pub root: PathBuf,
    /// The runtime library's state root.
    pub runtime: PathBuf,
    /// The `condo-monitor` binary.
    pub monitor_bin: PathBuf,
}

impl Paths {
    /// The directory of container `id` (bundle, logs, monitor files).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Its bundle directory.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir(id).join("bundle")
    }
}

/// A monitor just started: the container's init pid and the monitor's own.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// Host pid of the container's init.
    pub pid: i32,
    /// Host pid of the monitor.
    pub monitor_pid: i32,
    /// The monitor's start time (0 when it had already ended).
    pub monitor_start: u64,
}

/// Starts a monitor for `id` and waits for its report.
pub async fn spawn(paths: &Paths, id: &str) -> Result<Started, String> {
    let dir = paths.dir(id);
    let errlog = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
        .map_err(|e| format!("cannot open monitor.log: {e}"))?;
    // Not `output()`: it would pipe stderr too, and the monitor keeps stderr for its life.
    let mut child = tokio::process::Command::new(&paths.monitor_bin)
        .arg("run")
        .arg("--runtime-root")
        .arg(&paths.runtime)
        .arg("--id")
        .arg(id)
        .arg("--bundle")
        .arg(paths.bundle(id))
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(errlog))
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", paths.monitor_bin.display()))?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut out, &mut stdout).await;
    }
    let _ = child.wait().await;
    let out = std::process::Output {
        status: Default::default(),
        stdout,
        stderr: Vec::new(),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_default();
    if let Some(msg) = line.strip_prefix("error ") {
        return Err(msg.to_string());
    }
    let mut it = line.strip_prefix("ok ").unwrap_or_default().split(' ');
    let pid = it.next().and_then(|p| p.parse().ok());
    let monitor_pid = it.next().and_then(|p| p.parse().ok());
    match (pid, monitor_pid) {
        (Some(pid), Some(monitor_pid)) => {
            let monitor_start = start_time(monitor_pid).unwrap_or(0);
            Ok(Started {
                pid,
                monitor_pid,
                monitor_start,
            })
        }
        _ => Err(format!(
            "the monitor ended without a report (see {}/monitor.log)",
            dir.display()
        )),
    }
}

/// The start time of `pid`, while it is alive and not a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    match condo_runtime::state::proc_start_time(pid) {
        Some((t, false)) => Some(t),
        _ => None,
    }
}

/// Whether the monitor `pid` started at `start` still runs.
pub fn alive(pid: i32, start: u64) -> bool {
    start != 0 && start_time(pid) == Some(start)
}

/// Waits until the monitor `pid` (started at `start`) has ended.
pub async fn wait_exit(pid: i32, start: u64) {
    let fd = match condo_sys::process::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(_) => return,
    };
    // The pidfd pins the pid: check it is still our monitor.
    if !alive(pid, start) {
        return;
    }
    // An OwnedFd keeps its number for its whole life, which is what the safe (deprecated)
    // constructor needs; its replacement needs raw-pointer code, kept out of this crate.
    #[allow(deprecated)]
    let registered = AsyncFd::with_interest(fd, tokio::io::Interest::READABLE);
    match registered {
        Ok(a) => {
            let _ = a.readable().await;
        }
        Err(_) => {
            while alive(pid, start) {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// The exit the monitor recorded: code and time.
pub fn read_exit(dir: &Path) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(dir.join(EXIT_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((
        v["exit_code"].as_i64()? as i32,
        v["finished_at"].as_str()?.to_string(),
    ))
}

/// The monitor pid file: pid and start time.
pub fn read_pid_file(dir: &Path) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}
