//! Running one build step in a Condo container: the bundle's config.json, and a helper process
//! (`condo-build-step`) that creates the container through the runtime library from a
//! single-threaded process while the builder reads its output.

use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a build step container runs.
#[derive(Debug, Clone)]
pub struct StepProcess {
    /// Command and arguments.
    pub args: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Whether the step shares the host's network (else it gets an empty network namespace).
    pub network: bool,
}

/// The default PATH of build steps and instances.
pub const PATH: &str = condo_runtime::defaults::PATH_ENV;

/// A build step gets a container's default capabilities and may also make device nodes
/// (package scripts do).
fn caps() -> Vec<&'static str> {
    let mut c = condo_runtime::defaults::CONTAINER_CAPS.to_vec();
    c.push("CAP_MKNOD");
    c
}

/// The config.json of a build step whose root filesystem is mounted at `rootfs`.
pub fn step_spec(p: &StepProcess, rootfs: &Path) -> Value {
    let caps = json!(caps());
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
    ];
    if p.network {
        mounts.push(json!({"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind", "ro"]}));
    } else {
        ns.push(json!({"type": "network"}));
    }
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, PATH.into());
    }
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": p.args,
            "env": env,
            "cwd": p.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": "condo-build",
        "mounts": mounts,
        "linux": {
            "namespaces": ns,
            "maskedPaths": condo_runtime::defaults::MASKED_PATHS,
            "readonlyPaths": condo_runtime::defaults::READONLY_PATHS
        }
    })
}

/// Runs a command with stdout and stderr joined, handing each line to `log`; returns its exit
/// code (128 + signal when killed).
pub fn run_logged(cmd: &mut Command, log: &mut dyn FnMut(&str)) -> io::Result<i32> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let w2: OwnedFd = w.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2));
    let mut child = cmd.spawn()?;
    // Our copies of the write end must go, or the read below never sees the end.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut rd = BufReader::new(std::fs::File::from(r));
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match rd.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => log(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r'])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
    }
    let st = child.wait()?;
    use std::os::unix::process::ExitStatusExt;
    Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
}

/// How build steps reach the runtime.
#[derive(Debug, Clone)]
pub struct StepRunner {
    /// The `condo-build-step` binary.
    pub helper: PathBuf,
    /// The runtime's state root for build containers.
    pub runtime_root: PathBuf,
}

impl StepRunner {
    /// Runs `p` in a container on the root filesystem mounted at `rootfs`, with its bundle in
    /// `bundle` (an empty directory); returns the exit code.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        rootfs: &Path,
        p: &StepProcess,
        log: &mut dyn FnMut(&str),
    ) -> io::Result<i32> {
        let spec = step_spec(p, rootfs);
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec)?,
        )?;
        let mut cmd = Command::new(&self.helper);
        cmd.arg(&self.runtime_root).arg(id).arg(bundle);
        run_logged(&mut cmd, log)
    }
}
