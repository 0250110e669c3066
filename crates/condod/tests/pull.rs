//! Pulling through the API and the CLI from Debian's docker-registry on loopback (started
//! here, the image pushed with skopeo): streamed progress, the image recorded, `condo run` of
//! an image that is not local, and a registry that has no such image.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_image, have, Daemon};
use serde_json::{json, Value};

struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry on a free loopback port with `test/bb:1` in it; `None` without the tools.
fn registry_with_busybox() -> Option<Registry> {
    if !have("docker-registry") || !have("skopeo") {
        eprintln!("skipped: docker-registry and skopeo are needed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The settings go in through the environment; the file only has to exist.
    let cfg = dir.path().join("registry.yml");
    std::fs::write(&cfg, "version: 0.1\n").unwrap();
    let child = Command::new("docker-registry")
        .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            dir.path().join("data"),
        )
        .env("REGISTRY_LOG_LEVEL", "error")
        .args(["serve", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry {
        child,
        port,
        _dir: dir,
    };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "registry did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let tar = reg._dir.path().join("bb.tar");
    busybox_image(&tar, "bb:1");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", tar.display()))
        .arg(format!("docker://127.0.0.1:{port}/test/bb:1"))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo copy failed");
    Some(reg)
}

#[test]
fn pull_streams_progress_and_run_pulls_what_is_missing() {
    let Some(reg) = registry_with_busybox() else {
        return;
    };
    let d = Daemon::start();
    let reference = format!("127.0.0.1:{}/test/bb:1", reg.port);

    // Streamed: progress lines, then the image.
    let a = d.post(
        "/v1/images/pull?stream=true",
        &json!({ "reference": reference }).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let events = a.json_lines();
    assert_eq!(events[0]["progress"]["phase"], "resolved", "{}", a.body);
    let blobs = events[0]["progress"]["current"].as_u64().unwrap();
    assert_eq!(blobs, 2, "a config and one layer: {}", a.body);
    let downloaded = events
        .iter()
        .filter(|e| e["progress"]["phase"] == "downloaded")
        .count() as u64;
    assert_eq!(downloaded, blobs, "{}", a.body);
    assert!(
        events.iter().any(|e| e["progress"]["phase"] == "download"
            && e["progress"]["current"] == e["progress"]["total"]),
        "no blob reported its last byte: {}",
        a.body
    );
    let last = events.last().unwrap();
    assert_eq!(last["images"][0]["name"], reference.as_str(), "{}", a.body);
    assert_eq!(last["images"][0]["layers"], 1);

    // Inspect finds it; a second pull (not streamed) answers with the list.
    let enc = reference.replace('/', "%2F");
    let a = d.get(&format!("/v1/images/{enc}"));
    assert_eq!(a.status, 200, "{}", a.body);
    let a = d.post(
        "/v1/images/pull",
        &json!({ "reference": reference }).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()[0]["name"], reference.as_str());

    // An image the registry lacks: 404, in the stream too; nothing recorded.
    let missing = format!("127.0.0.1:{}/test/nosuch:1", reg.port);
    let a = d.post(
        "/v1/images/pull",
        &json!({ "reference": missing }).to_string(),
    );
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.json()["message"].as_str().unwrap().contains(&missing));
    let a = d.post(
        "/v1/images/pull?stream=true",
        &json!({ "reference": missing }).to_string(),
    );
    let last: Value = serde_json::from_str(a.body.lines().last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "not_found", "{}", a.body);
    // A registry that is not there: 502.
    let a = d.post(
        "/v1/images/pull",
        &json!({ "reference": "127.0.0.1:1/test/bb:1" }).to_string(),
    );
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(d.get("/v1/images").json().as_array().unwrap().len(), 1);

    // The CLI: remove it, then `run` pulls it (progress on stderr) and runs it.
    let (code, _, err) = d.condo(&["rmi", &reference]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.condo(&["run", "--rm", &reference, "echo", "pulled-and-ran"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pulled-and-ran"), "{out}");
    assert!(err.contains("pulling"), "{err}");
    assert!(err.contains("downloaded"), "{err}");
    // --pull never with an image that is not here fails, naming it.
    let (code, _, err) = d.condo(&["rmi", &reference]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.condo(&["create", "--pull", "never", &reference]);
    assert_ne!(code, 0);
    assert!(err.contains(&reference), "{err}");
    // `condo pull` prints the name; a missing image exits 3.
    let (code, out, err) = d.condo(&["pull", &reference]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), reference);
    let (code, _, err) = d.condo(&["pull", &missing]);
    assert_eq!(code, 3, "{err}");

    // Prune -a removes the image no container uses, and its blobs.
    let (code, out, err) = d.condo(&["image", "prune", "-a", "-f", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["images"][0], reference.as_str(), "{out}");
    assert!(r["blobs"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(d.get("/v1/images").json().as_array().unwrap().len(), 0);
    // Each pull, removal and prune was an event of kind image.
    let actions: Vec<String> = d
        .get("/v1/events?since=0&follow=false")
        .json_lines()
        .iter()
        .filter(|e| e["kind"] == "image")
        .map(|e| {
            assert_eq!(e["id"], reference.as_str(), "{e}");
            assert_eq!(e["attributes"]["name"], reference.as_str(), "{e}");
            e["action"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        actions,
        ["pull", "pull", "delete", "pull", "delete", "pull", "delete"],
        "one event for each pull and removal, none for the pulls that failed"
    );
    // Without -f and without a terminal, prune refuses.
    let (code, _, err) = d.condo(&["image", "prune"]);
    assert_ne!(code, 0);
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn import_streams_its_progress() {
    use std::io::Write;
    let d = Daemon::start();
    let tar = d.tmp.path().join("bb.tar");
    busybox_image(&tar, "bb:7");
    let data = std::fs::read(&tar).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    write!(
        s,
        "POST /v1/images/import?stream=true HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(&data).unwrap();
    let a = common::read_answer(s);
    assert_eq!(a.status, 201, "{}", a.body);
    let events = a.json_lines();
    let reads: Vec<u64> = events
        .iter()
        .filter(|e| e["progress"]["phase"] == "import")
        .map(|e| e["progress"]["current"].as_u64().unwrap())
        .collect();
    assert!(!reads.is_empty(), "{}", a.body);
    assert!(reads.windows(2).all(|w| w[0] < w[1]), "{reads:?}");
    assert_eq!(
        *reads.last().unwrap(),
        data.len() as u64,
        "the whole archive was read"
    );
    let last = events.last().unwrap();
    let name = last["images"][0]["name"].as_str().unwrap_or_default();
    assert!(name.ends_with("bb:7"), "{}", a.body);
    // Nothing is left of the upload.
    let tmp: Vec<_> = std::fs::read_dir(d.root.join("storage/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}
