//! Rebase end to end: a busybox template's instance moves to a newer build keeping its volume
//! data and parameters, and goes back by itself when a build does not become healthy.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A copy of the busybox template at `version`, checking every second, with `edit` applied to
/// its template.toml.
fn template(dir: &Path, version: &str, page: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let t = dir.join(format!("busybox-{version}"));
    std::fs::create_dir_all(&t).unwrap();
    for f in ["httpd.conf", "template.toml"] {
        std::fs::copy(repo().join("templates/busybox").join(f), t.join(f)).unwrap();
    }
    std::fs::write(
        t.join("index.html"),
        format!("<h1>{{{{ greeting }}}}</h1><p>{page}</p>\n"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(t.join("template.toml"))
        .unwrap()
        .replace("version = \"1\"", &format!("version = \"{version}\""))
        .replace("interval = 5", "interval = 1");
    std::fs::write(t.join("template.toml"), edit(toml)).unwrap();
    t
}

fn sh(d: &Daemon, c: &str, script: &str) -> String {
    let (code, out, err) = d.condo(&["exec", c, "sh", "-c", script]);
    assert_eq!(code, 0, "exec {script}: {err}");
    out
}

fn wait_healthy(d: &Daemon, c: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = d.inspect(c);
        if v["health"]["status"] == "healthy" {
            return;
        }
        assert!(Instant::now() < deadline, "{c} never became healthy: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rebase_keeps_volumes_and_rolls_back_a_failing_build() {
    let d = Daemon::start();
    let dir = d.tmp.path().join("templates");
    let v1 = template(&dir, "1", "version one", |t| t);
    let v2 = template(&dir, "2", "version two", |t| t);
    // Version 3 serves on another port than its healthcheck asks: never healthy.
    let v3 = template(&dir, "3", "version three", |t| {
        t.replace("httpd -f -p $port", "httpd -f -p 8081")
    });
    for t in [&v1, &v2, &v3] {
        let (code, _, err) = d.condo(&["template", "build", t.to_str().unwrap()]);
        assert_eq!(code, 0, "build {}: {err}", t.display());
    }
    let (code, _, err) = d.condo(&[
        "run",
        "-d",
        "--name",
        "site",
        "--template",
        "busybox:1",
        "--param",
        "greeting=Acme",
    ]);
    assert_eq!(code, 0, "run: {err}");
    wait_healthy(&d, "site");
    sh(
        &d,
        "site",
        "mkdir -p /var/www/uploads && echo kept > /var/www/uploads/data.txt && echo dropped > /outside-volumes && test -e /var/log/first-start",
    );

    // To version 2: the page is the new one, the parameter and the volume's data stay, what was
    // written elsewhere goes, and the first-start steps do not run again.
    let (code, out, err) = d.condo(&["rebase", "site", "--template", "busybox@2"]);
    assert_eq!(code, 0, "rebase to 2: {out} {err}");
    let v = d.inspect("site");
    assert_eq!(v["config"]["template"], "busybox:2", "{v}");
    assert_eq!(v["state"], "running");
    wait_healthy(&d, "site");
    let page = sh(&d, "site", "wget -q -O - http://127.0.0.1/");
    assert!(
        page.contains("version two") && page.contains("Acme"),
        "{page}"
    );
    assert_eq!(
        sh(&d, "site", "cat /var/www/uploads/data.txt").trim(),
        "kept"
    );
    assert_eq!(
        sh(
            &d,
            "site",
            "test -e /outside-volumes && echo yes || echo no"
        )
        .trim(),
        "no"
    );
    assert_eq!(
        sh(
            &d,
            "site",
            "test -e /var/log/first-start && echo ran || echo not"
        )
        .trim(),
        "not"
    );
    let snaps = d.get("/v1/containers/site/snapshots").json();
    assert!(
        snaps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"].as_str().unwrap().starts_with("rebase-1-")),
        "{snaps}"
    );
    sh(&d, "site", "echo newer > /var/www/uploads/data.txt");

    // To version 3, which never becomes healthy: the container is back on version 2.
    let (code, _, err) = d.condo(&[
        "rebase",
        "site",
        "--template",
        "busybox:3",
        "--timeout",
        "60",
    ]);
    assert_ne!(code, 0, "rebase to a failing build succeeded");
    assert!(
        err.contains("did not become healthy") && err.contains("busybox:2"),
        "{err}"
    );
    let v = d.inspect("site");
    assert_eq!(v["config"]["template"], "busybox:2", "{v}");
    assert_eq!(v["state"], "running", "{v}");
    wait_healthy(&d, "site");
    let page = sh(&d, "site", "wget -q -O - http://127.0.0.1/");
    assert!(page.contains("version two"), "{page}");
    assert_eq!(
        sh(&d, "site", "cat /var/www/uploads/data.txt").trim(),
        "newer"
    );

    // Bad input names the field; nothing changes.
    let a = d.post("/v1/containers/site/rebase", r#"{"template": "nginx:1"}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.json()["field"], "template");
    let a = d.post("/v1/containers/site/rebase", r#"{"template": "busybox:9"}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    let a = d.post("/v1/containers/site/rebase", r#"{"template": "busybox:2"}"#);
    assert_eq!(a.status, 409, "{}", a.body);
    let plain = d.run("plain", &["sleep", "100"], serde_json::json!({}));
    let a = d.post(
        &format!("/v1/containers/{plain}/rebase"),
        r#"{"template": "busybox:2"}"#,
    );
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(d.inspect("site")["config"]["template"], "busybox:2");
    for c in ["site", "plain"] {
        let (code, _, err) = d.condo(&["rm", "-f", c]);
        assert_eq!(code, 0, "rm: {err}");
    }
}
