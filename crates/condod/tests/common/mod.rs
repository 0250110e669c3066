//! Shared by the manager's end-to-end tests: a condod on a temporary root, a busybox rootfs,
//! and a tiny HTTP client over its unix socket.
//!
//! The binaries (condod, condo-monitor, condo) must sit side by side in the target directory:
//! `cargo test -p condod -p condo -p condo-monitor` builds them all before any test runs.
#![allow(dead_code)]

pub mod tenancy;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The target directory's binary `name`, beside this test's own build.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo test -p condod -p condo -p condo-monitor` (it builds all three)",
        p.display()
    );
    p
}

/// A minimal root filesystem with busybox and its applets.
pub fn make_rootfs(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bb = dir.join("bin/busybox");
    if !bb.exists() && std::fs::hard_link("/bin/busybox", &bb).is_err() {
        std::fs::copy("/bin/busybox", &bb).unwrap();
    }
    for a in [
        "sh", "cat", "echo", "ls", "id", "hostname", "sleep", "true", "false", "env", "ps", "kill",
        "seq", "head", "yes", "date", "pwd",
    ] {
        let l = dir.join("bin").join(a);
        if !l.exists() {
            std::os::unix::fs::symlink("busybox", &l).unwrap();
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The body as JSON lines (a stream).
    pub fn json_lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// A condod on a temporary root; killed (its containers deleted first) when dropped.
pub struct Daemon {
    /// Holds the temporary directory.
    pub tmp: tempfile::TempDir,
    /// The daemon's root.
    pub root: PathBuf,
    /// A busybox rootfs.
    pub rootfs: PathBuf,
    /// The daemon process.
    pub child: Option<Child>,
    /// Extra arguments.
    pub args: Vec<String>,
}

impl Daemon {
    /// Starts a daemon.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// Starts a daemon with extra arguments.
    pub fn start_with(args: &[&str]) -> Daemon {
        let tmp = tempfile::Builder::new()
            .prefix("condod-test")
            .tempdir()
            .unwrap();
        // A container's root is an unprivileged id on the host: it must be able to pass
        // through the directories above its root filesystem, as through /var/lib.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let root = tmp.path().join("root");
        let rootfs = tmp.path().join("rootfs");
        make_rootfs(&rootfs);
        let mut d = Daemon {
            tmp,
            root,
            rootfs,
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    /// Starts (again) the daemon process and waits for its socket.
    pub fn spawn(&mut self) {
        assert!(self.try_spawn(), "condod did not come up: {}", self.log());
    }

    /// Starts the daemon process; false when it does not answer within 20 s.
    fn try_spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.path().join("condod.log"))
            .unwrap();
        let child = Command::new(bin("condod"))
            .arg("--root")
            .arg(&self.root)
            .arg("--monitor")
            .arg(bin("condo-monitor"))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.healthy() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the daemon answers /health (never panics).
    fn healthy(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.sock()) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
    }

    /// Kills the daemon with SIGKILL (its containers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The socket path.
    pub fn sock(&self) -> PathBuf {
        self.root.join("condod.sock")
    }

    /// `unix://…` for the CLI.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("condod.log")).unwrap_or_default()
    }

    /// A request over the unix socket.
    pub fn req(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let s = UnixStream::connect(self.sock()).unwrap();
        request(s, method, path, body, None)
    }

    /// GET.
    pub fn get(&self, path: &str) -> Answer {
        self.req("GET", path, None)
    }

    /// POST with a JSON body.
    pub fn post(&self, path: &str, body: &str) -> Answer {
        self.req("POST", path, Some(body))
    }

    /// Creates and starts a busybox container running `cmd`; returns its id.
    pub fn run(&self, name: &str, cmd: &[&str], extra: Value) -> String {
        let mut body = serde_json::json!({"name": name, "rootfs": self.rootfs, "command": cmd});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        let a = self.post("/v1/containers", &body.to_string());
        assert_eq!(a.status, 201, "create: {}", a.body);
        let id = a.json()["id"].as_str().unwrap().to_string();
        let a = self.post(&format!("/v1/containers/{id}/start"), "");
        assert_eq!(a.status, 200, "start: {}", a.body);
        id
    }

    /// The container as JSON.
    pub fn inspect(&self, r: &str) -> Value {
        let a = self.get(&format!("/v1/containers/{r}"));
        assert_eq!(a.status, 200, "inspect {r}: {}", a.body);
        a.json()
    }

    /// Waits until the container's state is `state`.
    pub fn wait_state(&self, r: &str, state: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.inspect(r);
            if v["state"] == state {
                return v;
            }
            assert!(Instant::now() < deadline, "{r} never became {state}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes the busybox image `reference` as an image tar (tests/engines/mkimage.sh) under
    /// the temporary directory; returns its path.
    pub fn image_tar(&self, reference: &str) -> PathBuf {
        let tar = self
            .tmp
            .path()
            .join(format!("{}.tar", reference.replace([':', '/'], "_")));
        busybox_image(&tar, reference);
        tar
    }

    /// Runs the CLI against this daemon.
    pub fn condo(&self, args: &[&str]) -> (i32, String, String) {
        condo_at(&self.host(), args)
    }
}

/// Runs the CLI against the daemon at `host`: exit code, stdout, stderr.
pub fn condo_at(host: &str, args: &[&str]) -> (i32, String, String) {
    condo_env(&[("CONDO_HOST", host)], args)
}

/// Runs the CLI with only the `CONDO_*` variables of `env` (and whatever else `env` sets).
pub fn condo_env(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(bin("condo"));
    for v in ["CONDO_HOST", "CONDO_TOKEN", "CONDO_CA", "CONDO_CONTEXT"] {
        cmd.env_remove(v);
    }
    let o = cmd.envs(env.iter().copied()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs the CLI with each piece of `input` written to its stdin after a moment.
pub fn condo_with_input(
    d: &Daemon,
    args: &[&str],
    input: &'static [&'static [u8]],
) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(bin("condo"))
        .env("CONDO_HOST", d.host())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        for chunk in input {
            std::thread::sleep(std::time::Duration::from_millis(400));
            let _ = stdin.write_all(chunk);
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes a busybox image named `name` as a tar (an OCI layout and a docker-archive at once)
/// at `out`, with the repository's tests/engines/mkimage.sh.
pub fn busybox_image(out: &Path, name: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/engines/mkimage.sh");
    let st = Command::new("bash")
        .arg(script)
        .arg(out)
        .arg(name)
        .status()
        .unwrap();
    assert!(st.success(), "mkimage.sh failed");
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A test that failed while the daemon was down still must not leave containers behind.
        if (self.child.is_some() && self.healthy()) || self.try_spawn() {
            let a = self.get("/v1/containers?all=true");
            if a.status == 200 {
                for c in a.json().as_array().cloned().unwrap_or_default() {
                    let a = self.req(
                        "DELETE",
                        &format!(
                            "/v1/containers/{}?force=true",
                            c["id"].as_str().unwrap_or("")
                        ),
                        None,
                    );
                    if a.status != 204 {
                        eprintln!("cleanup: deleting {}: {} {}", c["id"], a.status, a.body);
                    }
                }
            }
        }
        self.kill9();
    }
}

/// The head of a request with a JSON `body`, a bearer `token` and `extra` header lines.
pub fn head(method: &str, path: &str, body: &str, token: Option<&str>, extra: &str) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends one request on `s` and reads the whole answer (sized, chunked or to the end).
pub fn request<S: Read + Write>(
    s: S,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Answer {
    request_with(s, method, path, body, token, "Connection: close\r\n")
}

/// [`request`] with `extra` header lines. A sized answer is read by its length (the connection
/// may stay open), and a 101 answer's body is left unread.
pub fn request_with<S: Read + Write>(
    mut s: S,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
    extra: &str,
) -> Answer {
    let body = body.unwrap_or("");
    let head = head(method, path, body, token, extra);
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    read_answer(s)
}

/// Reads one answer from `s` (sized, chunked or to the end).
pub fn read_answer<S: Read>(s: S) -> Answer {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        let l = line.to_ascii_lowercase();
        if l.starts_with("transfer-encoding: chunked") {
            chunked = true;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut raw = Vec::new();
    match length {
        _ if status == 101 => {}
        Some(n) => {
            raw.resize(n, 0);
            r.read_exact(&mut raw).unwrap();
        }
        None => {
            r.read_to_end(&mut raw).unwrap();
        }
    }
    let body = if chunked { dechunk(&raw) } else { raw };
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(i) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&raw[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&raw[i + 2..i + 2 + n]);
        raw = &raw[(i + 4 + n).min(raw.len())..];
    }
}
