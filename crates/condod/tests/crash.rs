//! The daemon is not a single point of failure: containers outlive a `kill -9` of condod, and a
//! crash at any step of create, start, snapshot, clone or delete (injected with `--fault STEP`)
//! leaves, once condod is back, no orphan mount, cgroup, runtime state, monitor or directory,
//! and no row that points at nothing. Needs root.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{json, Value};

/// A counter printed 20 times a second without forking (`read -t` on a FIFO nobody writes;
/// the containers share their rootfs, so all but the first find it made).
const COUNTER: &str = "busybox mkfifo /tmp/tick 2>/dev/null; exec 3<>/tmp/tick; i=0; \
                       while true; do i=$((i+1)); echo $i; read -t 0.05 x <&3; done";

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

/// The numbers a counter container logged, in order.
fn counted(d: &Daemon, id: &str) -> Vec<u64> {
    d.get(&format!("/v1/containers/{id}/logs"))
        .body
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let line = v["line"].as_str().unwrap();
            line.parse()
                .unwrap_or_else(|_| panic!("{id}: not a count: {line:?}"))
        })
        .collect()
}

/// 100 containers keep running and logging through a `kill -9` of condod; afterwards every
/// state is what it was (or what happened meanwhile) and every log is whole.
#[test]
fn hundred_containers_outlive_kill9() {
    const N: usize = 100;
    let mut d = Daemon::start();
    let ids: Vec<String> = (0..N)
        .map(|i| d.run(&format!("n{i}"), &["sh", "-c", COUNTER], json!({})))
        .collect();
    let frozen = d.run("frozen", &["sleep", "1000"], json!({}));
    assert_eq!(d.post("/v1/containers/frozen/pause", "").status, 200);
    let ended = d.run("ended", &["sh", "-c", "exit 3"], json!({}));
    d.wait_state(&ended, "stopped", 10);
    let quitter = d.run(
        "quitter",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.05; done",
        ],
        json!({}),
    );
    let before: Vec<Value> = ids.iter().map(|id| d.inspect(id)).collect();
    let quitter_pid = d.inspect(&quitter)["pid"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let logged_before: Vec<usize> = ids.iter().map(|id| counted(&d, id).len()).collect();

    d.kill9();
    // While condod is away: the counters go on, and one container ends with code 7.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &quitter_pid.to_string()])
        .status();
    std::thread::sleep(Duration::from_secs(1));
    for v in &before {
        assert!(
            alive(v["pid"].as_i64().unwrap()),
            "{} died with condod",
            v["name"]
        );
    }
    d.spawn();

    for (id, was) in ids.iter().zip(&before) {
        let v = d.inspect(id);
        assert_eq!(v["state"], "running", "{v}");
        assert_eq!(v["pid"], was["pid"], "{id} was restarted");
        assert_eq!(v["started_at"], was["started_at"], "{id} was restarted");
    }
    assert_eq!(d.inspect(&frozen)["state"], "paused");
    let v = d.inspect(&ended);
    assert_eq!(
        (v["state"].clone(), v["exit_code"].clone()),
        (json!("stopped"), json!(3))
    );
    let v = d.wait_state(&quitter, "stopped", 10);
    assert_eq!(v["exit_code"], 7, "{v}");
    // No line lost: every counter is whole from 1, and it counted on while condod was away.
    for (id, n) in ids.iter().zip(&logged_before) {
        let nums = counted(&d, id);
        assert!(
            nums.iter().enumerate().all(|(i, x)| *x == i as u64 + 1),
            "{id}: lines missing or repeated"
        );
        assert!(
            nums.len() >= n + 10,
            "{id}: {} lines, {n} before the kill",
            nums.len()
        );
    }
    // The daemon drives them again: the watchers were re-attached, so a stop is recorded.
    let v = d
        .post(&format!("/v1/containers/{}/stop?timeout=1", ids[0]), "")
        .json();
    assert_eq!(v["state"], "stopped", "{v}");
    let pid = before[1]["pid"].as_i64().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let v = d.wait_state(&ids[1], "stopped", 10);
    assert_eq!(v["exit_code"], 137, "{v}");
}

/// Mount points under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What the host holds that the database does not account for.
fn leftovers(d: &Daemon, ever: &BTreeSet<String>) -> Vec<String> {
    let rows = d.get("/v1/containers?all=true").json();
    let rows = rows.as_array().unwrap();
    let known: BTreeSet<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let live: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["state"] == "running" || r["state"] == "paused")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let mut bad = Vec::new();
    let root = std::fs::canonicalize(&d.root).unwrap();
    let containers = root.join("containers");
    let mounted = mounts_under(&root);
    for m in &mounted {
        let owner = Path::new(m)
            .strip_prefix(&containers)
            .ok()
            .and_then(|p| p.iter().next())
            .map(|s| s.to_string_lossy().into_owned());
        if !owner.is_some_and(|o| known.contains(&o)) {
            bad.push(format!("mount {m}"));
        }
    }
    for r in rows {
        let id = r["id"].as_str().unwrap();
        let rootfs = containers.join(id).join("rootfs");
        if !mounted.iter().any(|m| Path::new(m) == rootfs) {
            bad.push(format!("row {id} without its mounted root filesystem"));
        }
    }
    for n in names(&containers) {
        if !known.contains(&n) {
            bad.push(format!("directory containers/{n}"));
        }
    }
    for n in names(&root.join("storage/instances")) {
        if let Some(id) = n.strip_suffix(".json") {
            if !known.contains(id) {
                bad.push(format!("instance {id}"));
            }
        }
    }
    for n in names(&root.join("runtime")) {
        if !live.contains(&n) {
            bad.push(format!("runtime state {n}"));
        }
    }
    for h in names(Path::new("/sys/fs/cgroup")) {
        for id in ever {
            let cg = Path::new("/sys/fs/cgroup").join(&h).join("condo").join(id);
            if cg.exists() && !live.contains(id) {
                bad.push(format!("cgroup {}", cg.display()));
            }
        }
    }
    let marker = format!("{}/", containers.display());
    for p in names(Path::new("/proc")) {
        if p.parse::<u32>().is_err() {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.contains("condo-monitor") {
            continue;
        }
        let Some(rest) = cmd.split(&marker).nth(1) else {
            continue;
        };
        let id = rest.split(['/', ' ']).next().unwrap_or_default();
        if !live.contains(id) {
            bad.push(format!("monitor {p} of {id}"));
        }
    }
    bad
}

/// Sends a request that must crash the daemon; waits until it is gone.
fn crash(d: &mut Daemon, method: &str, path: &str, body: &str) {
    let sock = d.sock();
    let (m, p, b) = (method.to_string(), path.to_string(), body.to_string());
    // The answer never comes whole: the reading side's panic is the expected outcome.
    let _ = std::thread::spawn(move || {
        let s = std::os::unix::net::UnixStream::connect(sock).unwrap();
        common::request(s, &m, &p, Some(&b), None)
    })
    .join();
    let child = d.child.as_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{method} {path} did not crash condod"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.child = None;
}

fn create(d: &Daemon, name: &str, ephemeral: bool) -> String {
    let body = json!({"name": name, "image": "bb:1", "command": ["sleep", "1000"], "ephemeral": ephemeral});
    let a = d.post("/v1/containers", &body.to_string());
    assert_eq!(a.status, 201, "create {name}: {}", a.body);
    a.json()["id"].as_str().unwrap().to_string()
}

/// A crash at each step of each operation, then a restart: nothing is left over, and every
/// row that remains is a container that starts and deletes like any other. The steps of a
/// delete are tried again with an ephemeral container, whose files go after the answer.
#[test]
fn crash_at_every_step_leaves_nothing_behind() {
    let mut d = Daemon::start();
    let tar = d.image_tar("bb:1");
    let (code, _, err) = d.condo(&["import", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "import: {err}");
    let mut ever = BTreeSet::new();
    // The daemon names its steps when asked for one that does not exist: every one is tried.
    let o = std::process::Command::new(common::bin("condod"))
        .args(["--root", d.tmp.path().join("unused").to_str().unwrap()])
        .args(["--fault", "?"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let steps: Vec<String> = err
        .split("(one of ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no step list: {err}"))
        .split(", ")
        .map(String::from)
        .collect();
    assert!(steps.len() >= 10, "{steps:?}");
    let ephemeral_deletes = steps.iter().filter(|s| s.starts_with("delete."));
    let runs = steps
        .iter()
        .map(|s| (s, false))
        .chain(ephemeral_deletes.map(|s| (s, true)));
    for (step, ephemeral) in runs {
        let label = format!("{step}{}", if ephemeral { " (ephemeral)" } else { "" });
        d.kill9();
        d.args = vec!["--fault".into(), step.clone()];
        d.spawn();
        let body = json!({"name": "victim", "image": "bb:1", "command": ["sleep", "1000"]});
        let op = step.split('.').next().unwrap();
        match op {
            "create" => crash(&mut d, "POST", "/v1/containers", &body.to_string()),
            "start" => {
                ever.insert(create(&d, "victim", false));
                crash(&mut d, "POST", "/v1/containers/victim/start", "");
            }
            "snapshot" | "clone" => {
                ever.insert(create(&d, "victim", false));
                if step == "snapshot.frozen" {
                    // A live snapshot: the running container is frozen for it.
                    assert_eq!(d.post("/v1/containers/victim/start", "").status, 200);
                }
                let snap = json!({"name": "s1"}).to_string();
                if op == "snapshot" {
                    crash(&mut d, "POST", "/v1/containers/victim/snapshots", &snap);
                } else {
                    assert_eq!(d.post("/v1/containers/victim/snapshots", &snap).status, 201);
                    let to = json!({"name": "copy"}).to_string();
                    crash(
                        &mut d,
                        "POST",
                        "/v1/containers/victim/snapshots/s1/clone",
                        &to,
                    );
                }
            }
            "delete" => {
                ever.insert(create(&d, "victim", ephemeral));
                assert_eq!(d.post("/v1/containers/victim/start", "").status, 200);
                crash(&mut d, "DELETE", "/v1/containers/victim?force=true", "");
            }
            _ => panic!("step {step}: this test knows no operation {op}"),
        }
        // Ids the crashed operation made but never answered with.
        ever.extend(names(&d.root.join("containers")));
        d.args.clear();
        d.spawn();
        let bad = leftovers(&d, &ever);
        assert!(
            bad.is_empty(),
            "after a crash at {label}: {bad:?}\n{}",
            d.log()
        );
        let rows = d.get("/v1/containers?all=true").json();
        for r in rows.as_array().unwrap() {
            // Nobody asked for a pause here: an operation cut short must not leave one.
            assert_ne!(r["state"], "paused", "after a crash at {label}: {r}");
            let id = r["id"].as_str().unwrap();
            if r["state"] != "running" {
                let a = d.post(&format!("/v1/containers/{id}/start"), "");
                assert_eq!(a.status, 200, "after {label}: start {id}: {}", a.body);
            }
            let a = d.req("DELETE", &format!("/v1/containers/{id}?force=true"), None);
            assert_eq!(a.status, 204, "after {label}: delete {id}: {}", a.body);
        }
        // An ephemeral container's files go after the delete's answer: give them a moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut bad = leftovers(&d, &ever);
        while ephemeral && !bad.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            bad = leftovers(&d, &ever);
        }
        assert!(bad.is_empty(), "after {label} and a cleanup: {bad:?}");
    }
}
