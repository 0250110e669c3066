//! Images, templates and snapshots end to end: a real condod, real overlay instances (needs
//! root). Nothing may be left mounted once the containers are gone.

mod common;

use std::path::Path;

use common::Daemon;
use serde_json::json;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Mount points under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| Path::new(m).starts_with(&dir))
        .collect()
}

/// Writes "before", later "after", to /root/mark; a clone (same command) finds the mark its
/// snapshot holds and copies it to /root/seen.
const SEEN: &str = "if [ -e /root/mark ]; then cat /root/mark > /root/seen; exec sleep 1000; fi; \
    echo before > /root/mark; sleep 3; echo after > /root/mark; exec sleep 1000";

#[test]
fn import_run_snapshot_and_remove_an_image() {
    let d = Daemon::start();
    let tar = d.image_tar("bb:1");

    let (code, out, err) = d.condo(&["import", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "import: {err}");
    assert!(out.contains("bb:1"), "{out}");
    let (code, out, _) = d.condo(&["images", "--output", "json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(list[0]["layers"], 1);

    // The short name finds it; the image's own command, env and files are there.
    let (code, out, err) = d.condo(&[
        "run",
        "--name",
        "one",
        "bb:1",
        "sh",
        "-c",
        "echo $PATH; head -1 /etc/passwd; echo kept > /root/note",
    ]);
    assert_eq!(code, 0, "run: {err}");
    assert!(out.contains("/usr/local/sbin"), "{out}");
    assert!(out.contains("root:x:0:0"), "{out}");

    // Snapshots of the stopped container: create, clone, rollback.
    let a = d.post(
        "/v1/containers/one/snapshots",
        &json!({"name": "s1"}).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let a = d.post(
        "/v1/containers/one/snapshots",
        &json!({"name": "s1"}).to_string(),
    );
    assert_eq!(a.status, 409, "{}", a.body);
    let (code, out, err) = d.condo(&["snapshot", "ls", "one"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s1"), "{out}");
    let (code, _, err) = d.condo(&["snapshot", "clone", "one", "s1", "two"]);
    assert_eq!(code, 0, "clone: {err}");
    // Change the original, then roll it back.
    d.post("/v1/containers/one/start", "");
    d.wait_state("one", "stopped", 10);
    let (code, _, err) = d.condo(&["snapshot", "rollback", "one", "s1"]);
    assert_eq!(code, 0, "rollback: {err}");
    // The clone has the file the original wrote before the snapshot.
    let two = d.inspect("two");
    assert_eq!(two["state"], "created");
    let (code, out, err) = d.condo(&["start", "two"]);
    assert_eq!(code, 0, "start two: {err}{out}");
    let w = d.post("/v1/containers/two/wait", "");
    assert_eq!(w.json()["exit_code"], 0, "{}", w.body);
    let (_, logs, _) = d.condo(&["logs", "two"]);
    assert!(logs.contains("root:x:0:0"), "{logs}");
    let (code, _, _) = d.condo(&["snapshot", "rm", "one", "s1"]);
    assert_eq!(code, 0);

    // A container that runs is snapshotted in place and keeps running; rollback needs it
    // stopped. The snapshot holds what it wrote before, not what it writes after. It has a
    // disk limit, which `df` inside shows, so its layer is a subvolume of its own pool.
    let a = d.post(
        "/v1/containers",
        &json!({"name": "busy", "image": "bb:1", "command": ["sh", "-c", SEEN],
            "limits": {"disk": 64 << 20}})
        .to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    d.post("/v1/containers/busy/start", "");
    d.wait_state("busy", "running", 10);
    let (code, df, err) = d.condo(&["exec", "busy", "df", "-k", "/"]);
    assert_eq!(code, 0, "{err}");
    let total_kib: u64 = df
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("df: {df}"));
    assert!((60 * 1024..=64 * 1024).contains(&total_kib), "df: {df}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let a = d.post(
        "/v1/containers/busy/snapshots",
        &json!({"name": "x"}).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(d.inspect("busy")["state"], "running");
    let a = d.post("/v1/containers/busy/snapshots/x/rollback", "");
    assert_eq!(a.status, 409, "{}", a.body);
    let (code, _, err) = d.condo(&["snapshot", "clone", "busy", "x", "busy2"]);
    assert_eq!(code, 0, "clone: {err}");
    let a = d.post("/v1/containers/busy2/start", "");
    assert!(a.status < 300, "{}", a.body);
    d.wait_state("busy2", "running", 10);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, seen, err) = d.condo(&["exec", "busy2", "cat", "/root/seen"]);
    assert_eq!(seen.trim(), "before", "{err}");

    // An unknown image is refused and leaves nothing.
    let a = d.post(
        "/v1/containers",
        &json!({"name": "nope", "image": "nosuch:1"}).to_string(),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("nosuch"), "{}", a.body);

    for c in ["one", "two", "busy", "busy2"] {
        let (code, _, err) = d.condo(&["rm", "-f", c]);
        assert_eq!(code, 0, "rm {c}: {err}");
    }
    assert_eq!(mounts_under(&d.root), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(d.root.join("containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "container directories left: {left:?}");

    // Export, then import what it wrote under another name.
    let out_tar = d.tmp.path().join("out.tar");
    let (code, _, err) = d.condo(&["save", "bb:1", "-o", out_tar.to_str().unwrap()]);
    assert_eq!(code, 0, "save: {err}");
    let (code, out, err) = d.condo(&["image", "import", out_tar.to_str().unwrap()]);
    assert_eq!(code, 0, "import of the export: {err}");
    assert!(out.contains("bb:1"), "{out}");

    let (code, _, err) = d.condo(&["rmi", "bb:1"]);
    assert_eq!(code, 0, "rmi: {err}");
    let (code, _, _) = d.condo(&["rmi", "bb:1"]);
    assert_eq!(code, 3, "a second rmi finds nothing");
    let (_, out, _) = d.condo(&["images", "--output", "json"]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn run_from_the_busybox_template_with_a_parameter() {
    let d = Daemon::start();
    let dir = repo().join("templates/busybox");
    let (code, out, err) = d.condo(&["template", "build", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "build: {err}");
    assert_eq!(out.trim(), "busybox:1");
    // Built again through the API without streaming: every step from the cache.
    let a = d.post(
        "/v1/templates/build",
        &json!({"path": dir.canonicalize().unwrap()}).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["cached"], a.json()["steps"], "{}", a.body);

    // A failing step is reported with its name, and nothing is recorded.
    let broken = d.tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("template.toml"),
        "name = \"broken\"\nversion = \"1\"\nfrom = \"host-busybox\"\nrun = [\"echo about to fail; false\"]\n",
    )
    .unwrap();
    let (code, _, err) = d.condo(&["template", "build", broken.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("false") && err.contains("broken"), "{err}");

    let (code, out, _) = d.condo(&["templates", "--output", "json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(list[0]["name"], "busybox", "{out}");
    assert!(list[0]["parameters"]["greeting"].is_object(), "{out}");

    // A bad parameter is refused before anything is made.
    let (code, _, err) = d.condo(&[
        "run",
        "-d",
        "--template",
        "busybox",
        "-p",
        "port=eighty",
        "--name",
        "bad",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("port"), "{err}");
    let a = d.get("/v1/containers/bad");
    assert_eq!(a.status, 404, "{}", a.body);

    let (code, _, err) = d.condo(&[
        "run",
        "-d",
        "--template",
        "busybox",
        "-p",
        "greeting=Hi from the test",
        "--name",
        "x",
    ]);
    assert_eq!(code, 0, "run: {err}");
    d.wait_state("x", "running", 10);
    let mut page = String::new();
    for _ in 0..50 {
        let (_, out, _) = d.condo(&["exec", "x", "wget", "-q", "-O", "-", "http://127.0.0.1/"]);
        page = out;
        if page.contains("<h1>") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(page.contains("<h1>Hi from the test</h1>"), "{page}");

    // The template's limits and healthcheck (with the instance's parameters) apply.
    let v = d.inspect("x");
    assert_eq!(v["config"]["limits"]["memory"], 32 << 20, "{v}");
    assert_eq!(v["config"]["params"]["greeting"], "Hi from the test");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.inspect("x")["health"]["status"] != "healthy" {
        assert!(
            std::time::Instant::now() < deadline,
            "never healthy: {}",
            d.inspect("x")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // condo-init stops cleanly on the stop signal.
    let (code, _, err) = d.condo(&["stop", "x"]);
    assert_eq!(code, 0, "stop: {err}");
    assert_eq!(d.inspect("x")["exit_code"], 0);
    let (code, _, err) = d.condo(&["rm", "x"]);
    assert_eq!(code, 0, "rm: {err}");
    assert_eq!(mounts_under(&d.root), Vec::<String>::new());

    let (code, out, err) = d.condo(&["template", "show", "busybox:1"]);
    assert_eq!(code, 0, "show: {err}");
    assert!(out.contains("\"greeting\""), "{out}");
    let (code, _, err) = d.condo(&["template", "rm", "busybox"]);
    assert_eq!(code, 0, "template rm: {err}");
    let (code, _, _) = d.condo(&["template", "show", "busybox"]);
    assert_eq!(code, 3);
    let (_, out, _) = d.condo(&["images", "--output", "json"]);
    assert_eq!(out.trim(), "[]");
}
