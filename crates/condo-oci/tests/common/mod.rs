//! Shared helpers: busybox bundles, a private runtime root, and running condo-oci.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique container id for this test process.
pub fn unique_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The condo-oci binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_condo-oci")
}

/// A runtime root and bundle in a temporary directory.
pub struct Env {
    /// Holds the temp dir alive.
    pub tmp: tempfile::TempDir,
    /// The runtime state root.
    pub root: PathBuf,
}

impl Env {
    /// A fresh environment.
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("condo-oci-test")
            .tempdir()
            .unwrap();
        let root = tmp.path().join("state");
        Env { tmp, root }
    }

    /// A busybox bundle running `args` (no terminal, writable root).
    pub fn bundle(&self, name: &str, args: &[&str]) -> Bundle {
        let dir = self.tmp.path().join(name);
        make_rootfs(&dir.join("rootfs"));
        let mut spec = default_spec();
        spec["process"]["args"] = json!(args);
        spec["process"]["terminal"] = json!(false);
        spec["root"]["readonly"] = json!(false);
        let b = Bundle { dir, spec };
        b.save();
        b
    }

    /// Runs condo-oci with this root and `args`.
    pub fn oci(&self, args: &[&str]) -> Output {
        self.oci_in(None, args)
    }

    /// Runs condo-oci in `cwd`.
    pub fn oci_in(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        // Files, not pipes: a detached container keeps its stdio open long after we return.
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_p = self.tmp.path().join(format!(".out{n}"));
        let err_p = self.tmp.path().join(format!(".err{n}"));
        let mut c = Command::new(bin());
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c.stdout(std::fs::File::create(&out_p).unwrap());
        c.stderr(std::fs::File::create(&err_p).unwrap());
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        let status = c.status().unwrap();
        let o = Output {
            status,
            stdout: std::fs::read(&out_p).unwrap(),
            stderr: std::fs::read(&err_p).unwrap(),
        };
        let _ = std::fs::remove_file(&out_p);
        let _ = std::fs::remove_file(&err_p);
        o
    }

    /// Runs a container in the foreground and returns (exit code, stdout, stderr).
    pub fn run(&self, b: &Bundle, id: &str) -> (i32, String, String) {
        let o = self.oci(&["run", "--bundle", b.dir.to_str().unwrap(), id]);
        (
            o.status.code().unwrap_or(-1),
            text(&o.stdout),
            text(&o.stderr),
        )
    }

    /// The status of a container as `state` reports it.
    pub fn status(&self, id: &str) -> String {
        let o = self.oci(&["state", id]);
        assert!(o.status.success(), "state {id}: {}", text(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }
}

/// Decodes output.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A bundle whose config can be edited.
pub struct Bundle {
    /// Bundle directory.
    pub dir: PathBuf,
    /// config.json contents.
    pub spec: Value,
}

impl Bundle {
    /// Writes config.json.
    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    /// The rootfs path.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Path as str.
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

/// The default spec from `condo-oci spec`.
pub fn default_spec() -> Value {
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args(["spec", "--bundle"])
        .arg(t.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "spec: {}", text(&o.stderr));
    serde_json::from_slice(&std::fs::read(t.path().join("config.json")).unwrap()).unwrap()
}

/// A minimal root filesystem with busybox-static and its applets.
pub fn make_rootfs(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bb = dir.join("bin/busybox");
    if !bb.exists() {
        // A hard link is instant when /tmp and /bin share a filesystem; copy otherwise.
        if std::fs::hard_link("/bin/busybox", &bb).is_err() {
            std::fs::copy("/bin/busybox", &bb).unwrap();
        }
    }
    for a in [
        "sh", "cat", "echo", "ls", "id", "hostname", "sleep", "true", "false", "mkdir", "touch",
        "grep", "wc", "readlink", "stat", "head", "env", "pwd", "ps", "kill", "sysctl", "df",
        "mount", "test", "ulimit", "dd", "tr", "cut",
    ] {
        let l = dir.join("bin").join(a);
        if !l.exists() {
            std::os::unix::fs::symlink("busybox", &l).unwrap();
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// Host-side leftovers that a container might leak: cgroup dirs and state entries.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let p = h.path().join("condo").join(id);
            if p.exists() {
                out.push(p);
            }
            let p = h.path().join(id);
            if p.exists() {
                out.push(p);
            }
        }
    }
    let p = Path::new("/sys/fs/cgroup/condo").join(id);
    if p.exists() {
        out.push(p);
    }
    out
}

/// Number of mounts in this process's mount namespace.
pub fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Links more busybox applets into a rootfs made by [`make_rootfs`].
pub fn add_applets(rootfs: &Path, applets: &[&str]) {
    for a in applets {
        let l = rootfs.join("bin").join(a);
        if !l.exists() && std::fs::symlink_metadata(&l).is_err() {
            std::os::unix::fs::symlink("busybox", &l).unwrap();
        }
    }
}

/// Applets the probe scripts use beyond those of [`make_rootfs`].
pub const PROBE_APPLETS: &[&str] = &[
    "awk", "uname", "stty", "tty", "chmod", "ionice", "mkfifo", "sed", "sort", "ip", "ln", "rm",
    "umount", "nproc", "xargs", "seq",
];

impl Env {
    /// A busybox bundle running `script` under `sh -c`, with the probe applets, after `edit`
    /// changed its config.
    pub fn sh_bundle(&self, script: &str, edit: impl FnOnce(&mut Bundle)) -> Bundle {
        let mut b = self.bundle(&unique_id("b"), &["sh", "-c", script]);
        add_applets(&b.rootfs(), PROBE_APPLETS);
        edit(&mut b);
        b.save();
        b
    }

    /// Runs `script` in the foreground in a new container configured by `edit`;
    /// returns (exit code, stdout, stderr).
    pub fn sh(&self, script: &str, edit: impl FnOnce(&mut Bundle)) -> (i32, String, String) {
        let b = self.sh_bundle(script, edit);
        let id = unique_id("c");
        let r = self.run(&b, &id);
        assert!(
            !self.root.join(&id).exists(),
            "run left its state dir behind"
        );
        r
    }

    /// Waits up to `secs` for `id` to reach `want`.
    pub fn wait_status(&self, id: &str, want: &str, secs: u64) {
        let t = std::time::Instant::now();
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(t.elapsed().as_secs() < secs, "{id} stays {s}, never {want}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The init pid of a created or running container.
    pub fn pid(&self, id: &str) -> i32 {
        let o = self.oci(&["state", id]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["pid"].as_i64().unwrap_or(0) as i32
    }
}

/// Lines of `key=value` printed by a probe script.
pub fn kv(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The value of `field` in a /proc/PID/status text.
pub fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Lines of this process's mountinfo that mention `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Whether a process with this pid exists (a zombie counts).
pub fn pid_exists(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Everything a failed or finished container may leave behind: state dir, cgroups and
/// mounts of its bundle. Panics naming what is left.
pub fn assert_nothing_left(e: &Env, id: &str, bundle: &Path) {
    assert!(!e.root.join(id).exists(), "state dir of {id} left behind");
    assert!(
        cgroup_dirs_named(id).is_empty(),
        "cgroups of {id} left behind: {:?}",
        cgroup_dirs_named(id)
    );
    let m = mounts_mentioning(bundle.to_str().unwrap());
    assert!(m.is_empty(), "mounts left behind: {m:?}");
}

/// Listens on a console socket and returns the terminal master the runtime sends.
pub fn console_listener(path: &std::path::Path) -> std::sync::mpsc::Receiver<std::os::fd::OwnedFd> {
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        let (c, _) = l.accept().unwrap();
        let mut buf = [0u8; 256];
        let (_, fds) = condo_sys::fdpass::recv_with_fds(c.as_fd(), &mut buf, 1).unwrap();
        if let Some(fd) = fds.into_iter().next() {
            let _ = tx.send(fd);
        }
    });
    rx
}

/// Reads a terminal master until the other side hangs up.
pub fn read_all(master: std::os::fd::OwnedFd) -> String {
    use std::io::Read;
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO once every peer is closed
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    text(&out)
}

/// Runs condo-oci through `sh -c` after the shell opened `redirs` (like `3<file`), so the
/// runtime inherits descriptors without close-on-exec; returns (exit code, stdout, stderr).
pub fn oci_with_fds(e: &Env, redirs: &str, args: &[&str]) -> (i32, String, String) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let out_p = e.tmp.path().join(format!(".fdout{n}"));
    let err_p = e.tmp.path().join(format!(".fderr{n}"));
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "exec {redirs}; exec '{}' --root '{}' {}",
        bin(),
        e.root.display(),
        quoted.join(" ")
    );
    let st = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap())
        .status()
        .unwrap();
    let r = (
        st.code().unwrap_or(-1),
        std::fs::read_to_string(&out_p).unwrap(),
        std::fs::read_to_string(&err_p).unwrap(),
    );
    let _ = std::fs::remove_file(&out_p);
    let _ = std::fs::remove_file(&err_p);
    r
}

/// Processes (other than this one) whose command line mentions `needle`; the runtime's init
/// and exec children carry the container id in theirs.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// cgroup directories (in every hierarchy) whose name starts with `prefix`.
pub fn cgroups_with_prefix(prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut parents = vec![
        PathBuf::from("/sys/fs/cgroup"),
        PathBuf::from("/sys/fs/cgroup/condo"),
    ];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            parents.push(h.path());
            parents.push(h.path().join("condo"));
        }
    }
    for p in parents {
        if let Ok(rd) = std::fs::read_dir(&p) {
            out.extend(
                rd.flatten()
                    .filter(|d| d.file_name().to_string_lossy().starts_with(prefix))
                    .map(|d| d.path()),
            );
        }
    }
    out
}

/// Descriptors open in this test process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
