//! The HTTP API end to end: a real condod, real containers (needs root).

mod common;

use std::time::Duration;

use common::{request, Daemon};
use serde_json::json;

#[test]
fn served_openapi_matches_docs() {
    let d = Daemon::start();
    let a = d.get("/openapi.json");
    assert_eq!(a.status, 200);
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    assert!(a.body == docs, "docs/openapi.json differs from /openapi.json: run `CONDO_BLESS=1 cargo test -p condod docs_openapi`");
}

/// Method, path, body, expected status, code and field.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    &'static str,
    Option<&'static str>,
);

#[test]
fn bad_input_is_answered_and_changes_nothing() {
    let d = Daemon::start();
    let id = d.run("busy", &["sleep", "1000"], json!({}));
    let before = d.get("/v1/containers?all=true").body;
    let events_before = d
        .get("/v1/events?since=0&follow=false")
        .body
        .lines()
        .count();
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/containers",
            Some("{\"name\": "),
            400,
            "invalid_json",
            None,
        ),
        (
            "POST",
            "/v1/containers",
            Some("[1,2]"),
            400,
            "invalid_json",
            None,
        ),
        (
            "POST",
            "/v1/containers",
            Some(""),
            400,
            "invalid_json",
            None,
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"nmae\": \"x\"}"),
            400,
            "invalid_json",
            Some("nmae"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"limits\": {\"memory\": \"lots\"}}"),
            400,
            "invalid_json",
            Some("limits.memory"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"command\": \"sh\"}"),
            400,
            "invalid_json",
            Some("command"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"restart\": {\"policy\": \"sometimes\"}}"),
            400,
            "invalid_json",
            Some("restart.policy"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{}"),
            400,
            "invalid_value",
            Some("rootfs"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"rootfs\": \"/nonexistent\"}"),
            400,
            "invalid_value",
            Some("rootfs"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"rootfs\": \"/\", \"name\": \"bad name\"}"),
            400,
            "invalid_value",
            Some("name"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"rootfs\": \"/\", \"limits\": {\"memory\": 10}}"),
            400,
            "invalid_value",
            Some("limits.memory"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"rootfs\": \"/\", \"env\": [\"NOEQUALS\"]}"),
            400,
            "invalid_value",
            Some("env"),
        ),
        (
            "POST",
            "/v1/containers",
            Some("{\"rootfs\": \"/\", \"name\": \"busy\"}"),
            409,
            "conflict",
            None,
        ),
        ("GET", "/v1/containers/nosuch", None, 404, "not_found", None),
        (
            "DELETE",
            "/v1/containers/nosuch",
            None,
            404,
            "not_found",
            None,
        ),
        (
            "POST",
            "/v1/containers/nosuch/start",
            None,
            404,
            "not_found",
            None,
        ),
        ("GET", "/v1/nowhere", None, 404, "not_found", None),
        (
            "POST",
            "/v1/containers/busy/start",
            None,
            409,
            "conflict",
            None,
        ),
        ("DELETE", "/v1/containers/busy", None, 409, "conflict", None),
        (
            "POST",
            "/v1/containers/busy/resume",
            None,
            409,
            "conflict",
            None,
        ),
        (
            "POST",
            "/v1/containers/busy/kill?signal=NOPE",
            None,
            400,
            "invalid_value",
            Some("signal"),
        ),
        (
            "POST",
            "/v1/containers/busy/stop?timeout=soon",
            None,
            400,
            "invalid_value",
            Some("timeout"),
        ),
        (
            "POST",
            "/v1/containers/busy/rename",
            Some("{\"name\": 5}"),
            400,
            "invalid_json",
            Some("name"),
        ),
        (
            "POST",
            "/v1/containers/busy/update",
            Some("{\"limits\": {\"cpus\": -1}}"),
            400,
            "invalid_value",
            Some("limits.cpus"),
        ),
        (
            "POST",
            "/v1/containers/busy/exec",
            Some("{\"command\": []}"),
            400,
            "invalid_value",
            Some("command"),
        ),
        (
            "POST",
            "/v1/containers/busy/exec",
            Some("{\"cmd\": [\"ls\"]}"),
            400,
            "invalid_json",
            Some("cmd"),
        ),
        (
            "GET",
            "/v1/containers/busy/logs?tail=many",
            None,
            400,
            "invalid_value",
            Some("tail"),
        ),
        (
            "GET",
            "/v1/events?since=x",
            None,
            400,
            "invalid_value",
            Some("since"),
        ),
    ];
    for (m, p, body, status, code, field) in cases {
        let a = d.req(m, p, body);
        assert_eq!(a.status, status, "{m} {p} {body:?}: {}", a.body);
        let v = a.json();
        assert_eq!(v["code"], code, "{m} {p} {body:?}: {}", a.body);
        assert!(!v["message"].as_str().unwrap_or_default().is_empty());
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{m} {p} {body:?}: {}", a.body);
        }
    }
    assert_eq!(
        d.get("/v1/containers?all=true").body,
        before,
        "a failed request changed the containers"
    );
    assert_eq!(d.inspect(&id)["state"], "running");
    let events_after = d
        .get("/v1/events?since=0&follow=false")
        .body
        .lines()
        .count();
    assert_eq!(
        events_before, events_after,
        "a failed request left an event"
    );
}

/// A TLS stream to the daemon's TCP port, trusting only the CA it made (as `name`).
fn tls_to(
    d: &Daemon,
    port: u16,
    name: &str,
) -> std::io::Result<impl std::io::Read + std::io::Write> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(d.root.join("tls/ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

#[test]
fn tokens_guard_tcp() {
    let port = 20000 + (std::process::id() % 20000) as u16;
    let listen = format!("tcp://127.0.0.1:{port}");
    let d = Daemon::start_with(&["--listen", &listen]);
    // HTTPS from a CA made at first start, for the loopback address and localhost.
    let tcp = || tls_to(&d, port, "127.0.0.1").unwrap();
    assert_eq!(request(tcp(), "GET", "/health", None, None).status, 200);
    assert_eq!(
        request(
            tls_to(&d, port, "localhost").unwrap(),
            "GET",
            "/health",
            None,
            None
        )
        .status,
        200
    );
    // A name the certificate is not for is refused by the client.
    assert!(tls_to(&d, port, "example.com").is_err());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.root.join("tls/ca.key")), 0o600);
    let a = request(tcp(), "GET", "/v1/containers", None, None);
    assert_eq!(
        (a.status, a.json()["code"].clone()),
        (401, json!("unauthorized"))
    );
    assert_eq!(
        request(tcp(), "GET", "/v1/containers", None, Some("condo_wrong")).status,
        401
    );
    let token = std::fs::read_to_string(d.root.join("admin.token")).unwrap();
    let a = request(tcp(), "GET", "/v1/whoami", None, Some(token.trim()));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["role"], "admin");
    assert_eq!(mode(&d.root.join("admin.token")), 0o600);
    assert_eq!(mode(&d.sock()), 0o600);

    // Plain HTTP only on loopback (behind a TLS proxy); anywhere else it is refused.
    let root = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(common::bin("condod"))
        .args([
            "--root",
            root.path().to_str().unwrap(),
            "--listen",
            "http://0.0.0.0:1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("in the clear"), "{err}");
}

#[test]
fn lifecycle_through_the_api() {
    let d = Daemon::start();
    let id = d.run(
        "life",
        &[
            "sh",
            "-c",
            "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
        ],
        json!({"limits": {"memory": 33554432, "pids": 20}, "env": ["GREETING=hi"]}),
    );
    let v = d.inspect("life");
    assert_eq!(v["state"], "running");
    assert!(v["pid"].as_i64().unwrap() > 0);
    // Exec, plain.
    let a = d.post(
        "/v1/containers/life/exec",
        &json!({"command": ["sh", "-c", "echo $GREETING; hostname; exit 4"]}).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["exit_code"], 4);
    assert_eq!(a.json()["stdout"], "hi\nlife\n");
    // Limits reached the cgroup, and update changes them live.
    let a = d.post(
        "/v1/containers/life/exec",
        &json!({"command": ["cat", "/sys/fs/cgroup/pids/pids.max"]}).to_string(),
    );
    if a.status == 200 && !a.json()["stdout"].as_str().unwrap().is_empty() {
        assert_eq!(a.json()["stdout"], "20\n");
    }
    let a = d.post(
        "/v1/containers/life/update",
        &json!({"limits": {"pids": 30}, "restart": {"policy": "on-failure", "max_retries": 2}})
            .to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["config"]["limits"]["pids"], 30);
    assert_eq!(a.json()["config"]["limits"]["memory"], 33554432);
    // Stats.
    let s = d.get("/v1/containers/life/stats").json();
    assert!(
        s["pids"].as_u64().unwrap() >= 1 && s["memory_limit"] == 33554432,
        "{s}"
    );
    // Pause and resume.
    assert_eq!(
        d.post("/v1/containers/life/pause", "").json()["state"],
        "paused"
    );
    assert_eq!(
        d.post(
            "/v1/containers/life/exec",
            &json!({"command": ["true"]}).to_string()
        )
        .status,
        409
    );
    assert_eq!(
        d.post("/v1/containers/life/resume", "").json()["state"],
        "running"
    );
    // Rename.
    assert_eq!(
        d.post("/v1/containers/life/rename", r#"{"name": "life2"}"#)
            .json()["name"],
        "life2"
    );
    assert_eq!(d.get("/v1/containers/life").status, 404);
    // Stop: the trap answers SIGTERM, so the exit code is its own.
    let v = d.post("/v1/containers/life2/stop?timeout=5", "").json();
    assert_eq!(
        (v["state"].clone(), v["exit_code"].clone()),
        (json!("stopped"), json!(0)),
        "{v}"
    );
    let logs = d.get("/v1/containers/life2/logs").body;
    let lines: Vec<String> = logs
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["line"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(lines, ["started", "bye"]);
    let tail = d.get("/v1/containers/life2/logs?tail=1").body;
    assert_eq!(tail.lines().count(), 1);
    // Restart, then delete with force.
    assert_eq!(
        d.post("/v1/containers/life2/restart?timeout=5", "").json()["state"],
        "running"
    );
    assert_eq!(
        d.req("DELETE", "/v1/containers/life2?force=true", None)
            .status,
        204
    );
    assert_eq!(d.get(&format!("/v1/containers/{id}")).status, 404);
    assert!(
        !d.root.join("containers").join(&id).exists(),
        "the container's directory is left"
    );
    assert!(
        !d.root.join("runtime").join(&id).exists(),
        "the runtime state is left"
    );
    // The events tell the story.
    let actions: Vec<String> = d
        .get("/v1/events?since=0&follow=false")
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for want in [
        "create", "start", "exec", "update", "pause", "resume", "rename", "die", "delete",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "no {want} event in {actions:?}"
        );
    }
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    d.run(
        "flaky",
        &["sh", "-c", "exit 3"],
        json!({"restart": {"policy": "on-failure", "max_retries": 2}}),
    );
    d.run(
        "fine",
        &["true"],
        json!({"restart": {"policy": "on-failure"}}),
    );
    d.run(
        "forever",
        &["sleep", "1000"],
        json!({"restart": {"policy": "always"}}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = d.inspect("flaky");
        if v["state"] == "stopped" && v["restart_count"] == 2 {
            assert_eq!(v["exit_code"], 3);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "flaky: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = d.wait_state("fine", "stopped", 10);
    assert_eq!(
        (v["exit_code"].clone(), v["restart_count"].clone()),
        (json!(0), json!(0))
    );
    let pid = d.inspect("forever")["pid"].clone();
    assert_eq!(d.post("/v1/containers/forever/kill", "").status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = d.inspect("forever");
        if v["state"] == "running" && v["pid"] != pid {
            assert_eq!(v["restart_count"], 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "forever: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A stop through the API is not undone by the policy.
    let v = d.post("/v1/containers/forever/stop?timeout=1", "").json();
    assert_eq!(v["state"], "stopped");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.inspect("forever")["state"], "stopped");
}

#[test]
fn healthchecks() {
    let d = Daemon::start();
    let hc = json!({"healthcheck": {"command": ["cat", "/tmp/ok"], "interval": 1, "timeout": 5, "retries": 2}});
    d.run("hc", &["sleep", "1000"], hc);
    assert_eq!(d.inspect("hc")["health"]["status"], "starting");
    let wait_health = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let v = d.inspect("hc");
            if v["health"]["status"] == want {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "never {want}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let v = wait_health("unhealthy");
    assert!(v["health"]["failing_streak"].as_u64().unwrap() >= 2, "{v}");
    assert_ne!(v["health"]["last_exit_code"], 0);
    let a = d.post(
        "/v1/containers/hc/exec",
        &json!({"command": ["sh", "-c", "echo fine > /tmp/ok"]}).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let v = wait_health("healthy");
    assert_eq!(v["health"]["last_output"], "fine\n");
    let statuses: Vec<String> = d
        .get("/v1/events?since=0&follow=false")
        .body
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "health_status")
        .map(|e| e["attributes"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["unhealthy", "healthy"]);

    // A start period: failures do not count, and checks come every start_interval (here,
    // well before the long interval) until one succeeds.
    // (The containers share the rootfs folder: this one checks another file.)
    let hc = json!({"healthcheck": {"command": ["cat", "/tmp/up"], "interval": 3600, "timeout": 5,
        "retries": 1, "start_period": 600, "start_interval": 1}});
    d.run("slow", &["sleep", "1000"], hc);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let v = loop {
        let v = d.inspect("slow");
        if v["health"]["last_check"].is_string() {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no check yet: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(v["health"]["last_exit_code"], 0, "{v}");
    assert_eq!(v["health"]["status"], "starting", "{v}");
    assert_eq!(v["health"]["failing_streak"], 0, "{v}");
    let a = d.post(
        "/v1/containers/slow/exec",
        &json!({"command": ["sh", "-c", "echo up > /tmp/up"]}).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while d.inspect("slow")["health"]["status"] != "healthy" {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            d.inspect("slow")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let bad = d.post(
        "/v1/containers",
        &json!({"rootfs": d.rootfs, "healthcheck": {"command": []}}).to_string(),
    );
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (400, json!("healthcheck.command"))
    );
}

#[test]
fn a_process_may_open_its_own_output_again() {
    // Web servers log to /dev/stdout or /dev/stderr by opening them by name; in the
    // container's user namespace that open goes through the pipes' owner.
    let d = Daemon::start();
    d.run(
        "reopen",
        &[
            "sh",
            "-c",
            "echo to-stdout > /dev/stdout && echo to-stderr > /dev/stderr && echo done",
        ],
        json!({}),
    );
    d.wait_state("reopen", "stopped", 10);
    let v = d.inspect("reopen");
    assert_eq!(v["isolation"]["privileged"], false, "{v}");
    assert!(v["isolation"]["id_base"].as_u64().unwrap() > 0, "{v}");
    let logs = d.get("/v1/containers/reopen/logs").body;
    for want in ["to-stdout", "to-stderr", "done"] {
        assert!(logs.contains(want), "{want} missing: {logs}");
    }
    assert_eq!(v["exit_code"], 0, "{v}");
}
