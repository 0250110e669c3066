//! Pulling from a real registry (Debian's docker-registry) on loopback, started by the test:
//! OCI and Docker schema 2 manifests, an index, gzip/zstd/plain layers, basic and bearer auth
//! (through a small challenge-issuing proxy), progress, and a pull killed with SIGKILL.

mod common;

use common::*;
use condo_storage::content::ContentStore;
use condo_storage::image::pull::{pull, Credentials, Progress, PullOptions};
use condo_storage::image::{rootfs, ImageStore};
use condo_storage::snapshot::{OverlaySnapshotter, Snapshotter};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry() -> Option<Registry> {
    if !root() || !have("docker-registry") || !have("skopeo") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
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
    Some(reg)
}

fn push(layout: &Path, tag: &str, dest: &str, extra: &str) {
    sh(&format!(
        "skopeo copy -q --dest-tls-verify=false {extra} oci:{}:{tag} docker://{dest}",
        layout.display()
    ));
}

fn store(dir: &Path) -> ImageStore {
    ImageStore::open(
        dir.join("images"),
        ContentStore::open(dir.join("content")).unwrap(),
    )
    .unwrap()
}

fn opts() -> PullOptions {
    PullOptions {
        plain_http: true,
        ..Default::default()
    }
}

fn file_in_image(images: &ImageStore, name: &str, work: &Path, file: &str) -> Option<Vec<u8>> {
    let snap = OverlaySnapshotter::open(work.join("snap")).unwrap();
    let (_, m) = images.manifest(&images.get(name).unwrap().target).unwrap();
    let top = rootfs::unpack_image(images, &snap, &m).unwrap().unwrap();
    let mounts = snap.view("peek", Some(&top)).unwrap();
    let r = {
        let _g = MountGuard::new(&mounts, &work.join("mnt"));
        std::fs::read(work.join("mnt").join(file)).ok()
    };
    snap.remove("peek").unwrap();
    r
}

fn marker(name: &str) -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.file("etc/which", 0o644, name.as_bytes())
        .file("etc/.wh.os-release", 0o644, b"");
    t.finish()
}

#[test]
fn pulls_oci_docker_index_and_every_compression() {
    let Some(reg) = start_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let ms = write_layout(
        &layout,
        &[
            (
                "oci",
                vec![
                    (gzip(&busybox_layer()), GZ),
                    (zstd(&marker("oci")), ZST),
                    (marker("plain"), TAR),
                ],
            ),
            (
                "v2s2",
                vec![(gzip(&busybox_layer()), GZ), (gzip(&marker("docker")), GZ)],
            ),
            ("arm", vec![(gzip(&marker("arm")), GZ)]),
        ],
    );
    let host = format!("127.0.0.1:{}", reg.port);
    push(&layout, "oci", &format!("{host}/test/oci:1"), "");
    push(
        &layout,
        "v2s2",
        &format!("{host}/test/docker:1"),
        "--format v2s2",
    );
    // A multi-platform index whose amd64 entry is the "oci" image.
    let idx_dir = tmp.path().join("index-layout");
    sh(&format!("cp -a {} {}", layout.display(), idx_dir.display()));
    let size = |d: &str| {
        std::fs::metadata(idx_dir.join("blobs/sha256").join(&d[7..]))
            .unwrap()
            .len()
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ms[2], "size": size(&ms[2]), "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ms[0], "size": size(&ms[0]), "platform": {"architecture": "amd64", "os": "linux"}}
    ]});
    let data = serde_json::to_vec(&index).unwrap();
    let d = condo_storage::Digest::of(&data);
    std::fs::write(idx_dir.join("blobs/sha256").join(d.hex()), &data).unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": data.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(
        idx_dir.join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    push(&idx_dir, "multi", &format!("{host}/test/multi:1"), "--all");

    let images = store(tmp.path());
    let events = Mutex::new(Vec::new());
    let cb = |p: &Progress| events.lock().unwrap().push(p.clone());
    let r = pull(&images, &format!("{host}/test/oci:1"), &opts(), &cb).unwrap();
    assert_eq!(
        r.target.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    {
        let ev = events.lock().unwrap();
        assert!(
            matches!(ev[0], Progress::Resolved { blobs: 4, .. }),
            "{:?}",
            ev[0]
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Progress::BlobDone { .. }))
                .count(),
            4
        );
    }
    assert_eq!(
        file_in_image(&images, &r.name, tmp.path(), "etc/which").unwrap(),
        b"plain"
    );
    assert!(file_in_image(&images, &r.name, tmp.path(), "bin/busybox").is_some());

    let r = pull(&images, &format!("{host}/test/docker:1"), &opts(), &|_| {}).unwrap();
    assert_eq!(
        r.target.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        file_in_image(&images, &r.name, tmp.path(), "etc/which").unwrap(),
        b"docker"
    );

    let r = pull(&images, &format!("{host}/test/multi:1"), &opts(), &|_| {}).unwrap();
    assert_eq!(
        file_in_image(&images, &r.name, tmp.path(), "etc/which").unwrap(),
        b"plain",
        "index did not resolve to linux/amd64"
    );

    let e = pull(&images, &format!("{host}/test/missing:1"), &opts(), &|_| {}).unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    assert!(images.content().ingests().unwrap().is_empty());
    assert!(images.content().leases().unwrap().is_empty());
}

#[derive(Clone, Copy, PartialEq)]
enum AuthMode {
    Basic,
    Bearer,
    None,
}

/// A proxy in front of the registry that demands auth and can slow downloads down.
struct Proxy {
    port: u16,
    ranges: Arc<AtomicUsize>,
}

fn proxy(backend: u16, mode: AuthMode, delay: Duration) -> Proxy {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let ranges = Arc::new(AtomicUsize::new(0));
    let rc = ranges.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let rc = rc.clone();
            std::thread::spawn(move || {
                let _ = serve(s, backend, port, mode, delay, &rc);
            });
        }
    });
    Proxy { port, ranges }
}

fn serve(
    s: TcpStream,
    backend: u16,
    port: u16,
    mode: AuthMode,
    delay: Duration,
    ranges: &AtomicUsize,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let auth = get("authorization").unwrap_or_default();
    let deny = |w: &mut TcpStream, ch: String| {
        write!(w, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {ch}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    const BASIC: &str = "Basic Y29uZG86czNjcmV0"; // condo:s3cret
    match mode {
        AuthMode::Basic if auth != BASIC => return deny(&mut w, "Basic realm=\"test\"".into()),
        AuthMode::Bearer if path.starts_with("/token") => {
            if auth != BASIC || !path.contains("scope=repository") {
                return deny(&mut w, "Basic realm=\"token\"".into());
            }
            let body = r#"{"token":"t0k3n"}"#;
            return write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
        AuthMode::Bearer if auth != "Bearer t0k3n" => {
            return deny(&mut w, format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test\",scope=\"repository:test:pull\""));
        }
        _ => {}
    }
    let mut req = ureq::get(&format!("http://127.0.0.1:{backend}{path}"));
    for k in ["accept", "range"] {
        if let Some(v) = get(k) {
            if k == "range" {
                ranges.fetch_add(1, Ordering::SeqCst);
            }
            req = req.set(k, &v);
        }
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", resp.status());
    for h in [
        "content-type",
        "content-length",
        "content-range",
        "docker-content-digest",
    ] {
        if let Some(v) = resp.header(h) {
            head.push_str(&format!("{h}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    let mut body = resp.into_reader();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n])?;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
}

#[test]
fn basic_and_bearer_auth() {
    let Some(reg) = start_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_layout(&layout, &[("v1", vec![(gzip(&marker("auth")), GZ)])]);
    push(
        &layout,
        "v1",
        &format!("127.0.0.1:{}/test/auth:1", reg.port),
        "",
    );
    let creds = Some(Credentials {
        username: "condo".into(),
        password: "s3cret".into(),
    });
    for mode in [AuthMode::Basic, AuthMode::Bearer] {
        let p = proxy(reg.port, mode, Duration::ZERO);
        let images = store(&tmp.path().join(format!("{}", p.port)));
        let name = format!("127.0.0.1:{}/test/auth:1", p.port);
        let e = pull(&images, &name, &opts(), &|_| {}).unwrap_err();
        assert!(
            e.to_string().contains("credentials") || e.to_string().contains("401"),
            "{e}"
        );
        let o = PullOptions {
            credentials: creds.clone(),
            ..opts()
        };
        pull(&images, &name, &o, &|_| {}).unwrap();
        let bad = PullOptions {
            credentials: Some(Credentials {
                username: "condo".into(),
                password: "nope".into(),
            }),
            ..opts()
        };
        assert!(pull(&store(&tmp.path().join("bad")), &name, &bad, &|_| {}).is_err());
    }
}

/// Run in a child process by `killed_pull_resumes`; does nothing in a normal run.
#[test]
fn child_pull() {
    let Ok(args) = std::env::var("CONDO_TEST_CHILD_PULL") else {
        return;
    };
    let (dir, name) = args.split_once('|').unwrap();
    let r = pull(
        &store(Path::new(dir)),
        name,
        &PullOptions {
            parallel: 1,
            ..opts()
        },
        &|_| {},
    );
    eprintln!("child pull ended: {r:?}");
}

#[test]
fn killed_pull_resumes() {
    let Some(reg) = start_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    // Incompressible, so the registry copy stays large however it is pushed.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..24u32 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut big = TarBuilder::new();
    big.file("big.bin", 0o644, &noise);
    write_layout(&layout, &[("v1", vec![(big.finish(), TAR)])]);
    push(
        &layout,
        "v1",
        &format!("127.0.0.1:{}/test/big:1", reg.port),
        "",
    );
    let p = proxy(reg.port, AuthMode::None, Duration::from_millis(5));
    let name = format!("127.0.0.1:{}/test/big:1", p.port);
    let dir = tmp.path().join("store");
    let images = store(&dir);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_pull", "--nocapture", "--test-threads=1"])
        .env("CONDO_TEST_CHILD_PULL", format!("{}|{name}", dir.display()))
        .stdout(std::fs::File::create(tmp.path().join("child.log")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("child.err")).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let log = || {
        std::fs::read_to_string(tmp.path().join("child.log")).unwrap_or_default()
            + &std::fs::read_to_string(tmp.path().join("child.err")).unwrap_or_default()
    };
    let partial = || -> u64 {
        std::fs::read_dir(dir.join("content/ingest"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    while partial() < 2 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "child made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "child finished before it could be killed: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Consistent: no record, every visible blob verifies, the partial download is kept.
    assert!(images.list().unwrap().is_empty());
    for d in images.content().list().unwrap() {
        images.content().verify(&d).unwrap();
    }
    let kept = partial();
    assert!(kept >= 2 << 20 && kept < noise.len() as u64);

    // A retry resumes with a range request and completes.
    let before = p.ranges.load(Ordering::SeqCst);
    let r = pull(&images, &name, &opts(), &|_| {}).unwrap();
    assert!(
        p.ranges.load(Ordering::SeqCst) > before,
        "retry did not resume"
    );
    assert_eq!(
        file_in_image(&images, &r.name, tmp.path(), "big.bin")
            .unwrap()
            .len(),
        noise.len()
    );
    assert!(images.content().ingests().unwrap().is_empty());
}
