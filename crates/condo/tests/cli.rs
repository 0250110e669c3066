//! The `condo` command line against a real condod (needs root), and the daemon's crash safety.

#[path = "../../condod/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{condo_with_input, Daemon};

fn rootfs(d: &Daemon) -> String {
    d.rootfs.display().to_string()
}

#[test]
fn run_in_the_foreground_shows_output_and_exit_code() {
    let d = Daemon::start();
    let r = rootfs(&d);
    let (code, out, err) = d.condo(&[
        "run",
        "--rm",
        "--name",
        "fg",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, out, _) = d.condo(&["ps", "-a", "-q"]);
    assert_eq!((code, out.as_str()), (0, ""), "--rm left the container");
    let (code, _, err) = d.condo(&["run", "--rootfs", &r, "nosuchprogram"]);
    assert_ne!(code, 0);
    assert!(err.contains("nosuchprogram"), "{err}");
}

#[test]
fn detached_lifecycle() {
    let d = Daemon::start();
    let r = rootfs(&d);
    let (code, id, err) = d.condo(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "WHO=condo",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "40",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo hello $WHO; exec sleep 1000",
    ]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    assert_eq!(id.len(), 16);
    let (_, ps, _) = d.condo(&["ps"]);
    assert!(
        ps.lines()
            .nth(1)
            .is_some_and(|l| l.contains("web") && l.contains("running")),
        "{ps}"
    );
    let (_, json, _) = d.condo(&["ps", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["config"]["limits"]["memory"], 64 << 20);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, logs, _) = d.condo(&["logs", "--tail", "5", "web"]);
        if logs == "hello condo\n" {
            break;
        }
        assert!(Instant::now() < deadline, "logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, _) = d.condo(&["exec", "web", "sh", "-c", "echo $WHO; exit 5"]);
    assert_eq!((code, out.as_str()), (5, "condo\n"));
    let (code, out, _) = d.condo(&["stats", "--no-stream", "--output", "json", "web"]);
    assert_eq!(code, 0);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s[0]["memory_limit"], 64 << 20);
    let (code, _, err) = d.condo(&["rm", "web"]);
    assert_eq!(code, 4, "a conflict exits 4: {err}");
    assert!(err.contains("stop it first"), "{err}");
    let (code, _, err) = d.condo(&["inspect", "nosuch"]);
    assert_eq!(code, 3, "not found exits 3: {err}");
    let (code, _, _) = d.condo(&["stop", "-t", "1", "web"]);
    assert_eq!(code, 0);
    let (_, inspect, _) = d.condo(&["inspect", &id[..6]]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["state"], "stopped");
    assert_eq!(
        v[0]["exit_code"], 137,
        "sleep ignores SIGTERM as pid 1, so SIGKILL ended it"
    );
    let (code, _, _) = d.condo(&["start", "web"]);
    assert_eq!(code, 0);
    let (code, _, _) = d.condo(&["rm", "-f", "web"]);
    assert_eq!(code, 0);
    let (_, all, _) = d.condo(&["ps", "-a", "-q"]);
    assert!(all.is_empty(), "{all}");
    let (code, info, _) = d.condo(&["system", "info", "--output", "json"]);
    assert_eq!(code, 0);
    assert!(info.contains("\"api_version\": \"v1\""), "{info}");
}

#[test]
fn cli_reports_an_absent_daemon() {
    let (code, _, err) = {
        let o = std::process::Command::new(common::bin("condo"))
            .env("CONDO_HOST", "unix:///nonexistent/condod.sock")
            .arg("ps")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot reach condod at unix:///nonexistent/condod.sock"),
        "{err}"
    );
}

/// Containers outlive a SIGKILLed daemon; the daemon comes back to the right states, no log
/// line is lost, and a container that ended while it was away is recorded with its exit code.
#[test]
fn containers_survive_daemon_kill9() {
    const N: usize = 10;
    let mut d = Daemon::start();
    let mut ids = Vec::new();
    for i in 0..N {
        // Each counts, one line every 20 ms.
        ids.push(d.run(
            &format!("c{i}"),
            &[
                "sh",
                "-c",
                "i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done",
            ],
            serde_json::json!({}),
        ));
    }
    let quitter = d.run(
        "quitter",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.05; done",
        ],
        serde_json::json!({}),
    );
    let paused = d.run("frozen", &["sleep", "1000"], serde_json::json!({}));
    assert_eq!(d.post("/v1/containers/frozen/pause", "").status, 200);
    let pids: Vec<serde_json::Value> = ids.iter().map(|id| d.inspect(id)["pid"].clone()).collect();
    d.kill9();
    // While the daemon is away: one container ends with code 7.
    let q = d.inspect_offline_pid(&quitter);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(q.to_string())
        .status();
    std::thread::sleep(Duration::from_millis(500));
    d.spawn();
    for (id, pid) in ids.iter().zip(&pids) {
        let v = d.inspect(id);
        assert_eq!(v["state"], "running", "{v}");
        assert_eq!(&v["pid"], pid, "{id} was restarted");
    }
    let v = d.wait_state(&quitter, "stopped", 10);
    assert_eq!(v["exit_code"], 7, "{v}");
    assert_eq!(d.inspect(&paused)["state"], "paused");
    // No line lost: every counter is contiguous from 1.
    std::thread::sleep(Duration::from_millis(200));
    for id in &ids {
        let body = d.get(&format!("/v1/containers/{id}/logs")).body;
        let nums: Vec<u64> = body
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["line"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(nums.len() > 10, "{id}: {} lines", nums.len());
        assert!(
            nums.iter().enumerate().all(|(i, n)| *n == i as u64 + 1),
            "{id}: lines missing"
        );
    }
    // And the daemon still drives them.
    assert_eq!(
        d.post(&format!("/v1/containers/{}/stop?timeout=1", ids[0]), "")
            .json()["state"],
        "stopped"
    );
}

trait Offline {
    fn inspect_offline_pid(&self, id: &str) -> i32;
}

impl Offline for Daemon {
    /// The init pid of a container, read from the runtime state while the daemon is down.
    fn inspect_offline_pid(&self, id: &str) -> i32 {
        let state =
            std::fs::read_to_string(self.root.join("runtime").join(id).join("state.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&state).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }
}

/// Runs the CLI with `input` written to its stdin after a short pause.
#[test]
fn interactive_run_and_exec() {
    let d = Daemon::start();
    let r = rootfs(&d);
    let (code, out) = condo_with_input(
        &d,
        &[
            "run", "-it", "--rm", "--name", "shell", "--rootfs", &r, "sh",
        ],
        &[b"echo in-$((1+2)) $(tty); exit 5\n"],
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("in-3 /dev/pts/0"), "{out}");
    let (code, _, err) = d.condo(&["run", "-d", "--name", "bg", "--rootfs", &r, "sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    let (code, out) = condo_with_input(
        &d,
        &["exec", "-it", "bg", "sh"],
        &[b"echo via-$((2+2)); exit 6\n"],
    );
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("via-4"), "{out}");
    let (code, _, err) = d.condo(&["ps", "-a", "-q"]);
    assert_eq!((code, err.as_str()), (0, ""));
}

/// What the daemon does at start: `always` comes back even after a stop, `unless-stopped` does
/// not, and a container whose monitor died while the daemon was away is stopped with nothing left.
#[test]
fn daemon_start_reconciles() {
    let mut d = Daemon::start();
    let always = d.run(
        "always",
        &["sleep", "1000"],
        serde_json::json!({"restart": {"policy": "always"}}),
    );
    let unless = d.run(
        "unless",
        &["sleep", "1000"],
        serde_json::json!({"restart": {"policy": "unless-stopped"}}),
    );
    let orphan = d.run("orphan", &["sleep", "1000"], serde_json::json!({}));
    for id in [&always, &unless] {
        assert_eq!(
            d.post(&format!("/v1/containers/{id}/stop?timeout=1"), "")
                .json()["state"],
            "stopped"
        );
    }
    let init = d.inspect(&orphan)["pid"].as_i64().unwrap();
    d.kill9();
    let mon = std::fs::read_to_string(d.root.join("containers").join(&orphan).join("monitor.pid"))
        .unwrap();
    let mon: i32 = mon.split_whitespace().next().unwrap().parse().unwrap();
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(mon.to_string())
        .status();
    std::thread::sleep(Duration::from_millis(200));
    d.spawn();
    d.wait_state(&always, "running", 10);
    assert_eq!(d.inspect(&unless)["state"], "stopped");
    let v = d.wait_state(&orphan, "stopped", 10);
    assert!(v["pid"].is_null(), "{v}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{init}")).exists() && !zombie(init) {
        assert!(
            Instant::now() < deadline,
            "the orphaned init {init} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !d.root.join("runtime").join(&orphan).exists(),
        "runtime state left for the orphan"
    );
}

fn zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z"))
        .unwrap_or(true)
}

#[test]
fn volumes_mount_host_paths() {
    let d = Daemon::start();
    let r = rootfs(&d);
    let data = d.tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("in.txt"), "from the host\n").unwrap();
    let rw = format!("{}:/data", data.display());
    let ro = format!("{}:/ro:ro", data.display());
    let (code, out, err) = d.condo(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "-v",
        &ro,
        "--rootfs",
        &r,
        "sh",
        "-c",
        "cat /data/in.txt; echo out > /data/out.txt; echo x > /ro/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from the host\nread-only\n");
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        "out\n"
    );
    let (code, _, err) = d.condo(&[
        "run",
        "--rm",
        "-v",
        "relative:/x:rw:extra",
        "--rootfs",
        &r,
        "true",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("volume"), "{err}");
}

#[test]
fn a_reader_that_goes_away_ends_a_stream_quietly() {
    use std::io::{BufRead, Read};
    let d = Daemon::start();
    let r = rootfs(&d);
    let (code, _, err) = d.condo(&[
        "run", "-d", "--name", "idle", "--rootfs", &r, "sleep", "1000",
    ]);
    assert_eq!(code, 0, "{err}");
    // `condo stats | head -1`: the reader takes the header line and closes the pipe.
    let mut child = std::process::Command::new(common::bin("condo"))
        .env("CONDO_HOST", d.host())
        .env_remove("CONDO_TOKEN")
        .arg("stats")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("ID"), "{first:?}");
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert_eq!(err, "", "a closed pipe is no error to report");
    d.condo(&["rm", "-f", "idle"]);
}

#[test]
fn https_to_the_daemon_with_its_own_ca() {
    let port = 20000 + ((std::process::id() + 7) % 20000) as u16;
    let listen = format!("tcp://127.0.0.1:{port}");
    let d = Daemon::start_with(&["--listen", &listen]);
    let token = std::fs::read_to_string(d.root.join("admin.token")).unwrap();
    let ca = d.root.join("tls/ca.pem");
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path().to_str().unwrap();
    let condo = |args: &[&str]| common::condo_env(&[("XDG_CONFIG_HOME", cfg)], args);
    let ca_arg = ca.to_str().unwrap();
    let (code, out, err) = condo(&[
        "--host",
        &listen,
        "--token",
        token.trim(),
        "--ca",
        ca_arg,
        "system",
        "info",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Version:"), "{out}");
    // Without the daemon's CA the certificate is not trusted, and the error says what to do.
    let (code, _, err) = condo(&["--host", &listen, "--token", token.trim(), "ps"]);
    assert_ne!(code, 0);
    assert!(err.contains("TLS") && err.contains("--ca"), "{err}");
    // `login --ca` keeps the CA in the context: later commands need neither.
    let (code, _, err) = condo(&["login", "--ca", ca_arg, "--token", token.trim(), &listen]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = condo(&["ps", "-a", "-q"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    // A run over TLS: its output and its exit code.
    let r = rootfs(&d);
    let (code, out, err) = condo(&[
        "run",
        "--rm",
        "--rootfs",
        &r,
        "sh",
        "-c",
        "echo over-tls; exit 5",
    ]);
    assert_eq!((code, out.as_str()), (5, "over-tls\n"), "{err}");
}
