//! Leaks, scale and hangs: many cycles and many containers at once leave nothing behind, and
//! no foreground `run` ever loses the exit of its container.
//!
//! Counts come from the environment, with the numbers as defaults:
//! CONDO_STRESS_CYCLES (200), CONDO_STRESS_PARALLEL (50), CONDO_STRESS_RUNS (10000),
//! CONDO_STRESS_ROUNDS (20), CONDO_STRESS_ROUND_SIZE (50), CONDO_STRESS_TIMEOUT (30 seconds).

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

/// The tests of this file count descriptors and processes: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn timeout() -> Duration {
    Duration::from_secs(count("CONDO_STRESS_TIMEOUT", 30) as u64)
}

/// A bundle running `args` with the default (read-only root) config.
fn bundle(e: &Env, name: &str, args: &[&str]) -> Bundle {
    let mut b = e.bundle(name, args);
    b.spec["root"]["readonly"] = json!(true);
    b.save();
    b
}

/// How one guarded command ended.
enum Ended {
    Exited(i32, String),
    Hung,
}

/// Runs condo-oci with `args`, killing it after `limit`.
fn guarded(e: &Env, args: &[&str], limit: Duration, err_file: &std::path::Path) -> Ended {
    let mut child = Command::new(bin())
        .arg("--root")
        .arg(&e.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err_file).unwrap())
        .spawn()
        .unwrap();
    let pidfd = condo_sys::process::pidfd_open(child.id() as i32).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Ended::Hung;
        }
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::fs::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => break,
            _ => continue,
        }
    }
    let st = child.wait().unwrap();
    Ended::Exited(
        st.code().unwrap_or(-1),
        std::fs::read_to_string(err_file).unwrap_or_default(),
    )
}

fn state_dirs(e: &Env) -> Vec<String> {
    std::fs::read_dir(&e.root)
        .map(|rd| {
            rd.flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts nothing of the containers named `prefix…` is left.
fn assert_clean(e: &Env, prefix: &str, fds_before: usize) {
    assert!(
        state_dirs(e).is_empty(),
        "state dirs left: {:?}",
        state_dirs(e)
    );
    assert!(
        cgroups_with_prefix(prefix).is_empty(),
        "cgroups left: {:?}",
        cgroups_with_prefix(prefix)
    );
    let m = mounts_mentioning(e.tmp.path().to_str().unwrap());
    assert!(m.is_empty(), "mounts left: {m:?}");
    let procs = processes_mentioning(prefix);
    assert!(procs.is_empty(), "processes left: {procs:?}");
    assert_eq!(
        fd_count(),
        fds_before,
        "descriptors of the test process leaked"
    );
}

#[test]
fn create_start_delete_cycles_leak_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let n = count("CONDO_STRESS_CYCLES", 200);
    let e = Env::new();
    let b = bundle(&e, "b", &["true"]);
    let prefix = unique_id("leak");
    let (fds, mounts) = (fd_count(), mount_count());
    let t = Instant::now();
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let o = e.oci(&["create", "--bundle", b.path(), &id]);
        assert!(o.status.success(), "create {id}: {}", text(&o.stderr));
        let o = e.oci(&["start", &id]);
        assert!(o.status.success(), "start {id}: {}", text(&o.stderr));
        e.wait_status(&id, "stopped", timeout().as_secs());
        let o = e.oci(&["delete", &id]);
        assert!(o.status.success(), "delete {id}: {}", text(&o.stderr));
    }
    let took = t.elapsed();
    eprintln!(
        "{n} create/start/wait/delete cycles in {took:?} ({:?} each); mounts {} -> {}",
        took / n.max(1) as u32,
        mounts,
        mount_count()
    );
    assert_clean(&e, &prefix, fds);
}

#[test]
fn fifty_containers_at_once() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let n = count("CONDO_STRESS_PARALLEL", 50);
    let e = Env::new();
    let b = bundle(&e, "b", &["sleep", "1"]);
    let prefix = unique_id("many");
    let fds = fd_count();
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let t = Instant::now();
    let each = |verb: &'static str| {
        std::thread::scope(|s| {
            let hs: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (e, b) = (&e, &b);
                    s.spawn(move || {
                        let o = match verb {
                            "create" => e.oci(&["create", "--bundle", b.path(), id]),
                            v => e.oci(&[v, id]),
                        };
                        assert!(o.status.success(), "{verb} {id}: {}", text(&o.stderr));
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        })
    };
    each("create");
    let created = t.elapsed();
    let l: serde_json::Value =
        serde_json::from_slice(&e.oci(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(
        l.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "created")
            .count(),
        n,
        "{l}"
    );
    each("start");
    let started = t.elapsed();
    let l: serde_json::Value =
        serde_json::from_slice(&e.oci(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(
        l.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] != "created")
            .count(),
        n,
        "{l}"
    );
    for id in &ids {
        e.wait_status(id, "stopped", timeout().as_secs());
    }
    each("delete");
    eprintln!("{n} at once: created in {created:?}, started by {started:?}, all exited and deleted by {:?}", t.elapsed());
    assert_clean(&e, &prefix, fds);
}

#[test]
fn sequential_runs_never_hang() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let n = count("CONDO_STRESS_RUNS", 10_000);
    let e = Env::new();
    let b = bundle(&e, "b", &["true"]);
    let prefix = unique_id("seq");
    let fds = fd_count();
    let err_file = e.tmp.path().join("seq.err");
    let (mut hung, mut failed) = (Vec::new(), Vec::new());
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let t1 = Instant::now();
        match guarded(
            &e,
            &["run", "--bundle", b.path(), &id],
            timeout(),
            &err_file,
        ) {
            Ended::Hung => {
                eprintln!("run {id} hung for {:?}", timeout());
                hung.push(id.clone());
                let _ = e.oci(&["delete", "-f", &id]);
            }
            Ended::Exited(0, _) => {}
            Ended::Exited(c, err) => failed.push(format!("{id}: exit {c}: {err}")),
        }
        slowest = slowest.max(t1.elapsed());
    }
    let took = t.elapsed();
    eprintln!(
        "{n} sequential runs in {took:?} ({:?} each, slowest {slowest:?}); hung: {}; failed: {}",
        took / n.max(1) as u32,
        hung.len(),
        failed.len()
    );
    assert!(hung.is_empty(), "runs that hung: {hung:?}");
    assert!(
        failed.is_empty(),
        "runs that failed: {:?}",
        &failed[..failed.len().min(10)]
    );
    assert_clean(&e, &prefix, fds);
}

#[test]
fn parallel_runs_never_hang() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rounds = count("CONDO_STRESS_ROUNDS", 20);
    let size = count("CONDO_STRESS_ROUND_SIZE", 50);
    let e = Env::new();
    let b = bundle(&e, "b", &["true"]);
    let prefix = unique_id("par");
    let fds = fd_count();
    let hung = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    let t = Instant::now();
    for r in 0..rounds {
        std::thread::scope(|s| {
            for i in 0..size {
                let (e, b, hung, failed, prefix) = (&e, &b, &hung, &failed, &prefix);
                s.spawn(move || {
                    let id = format!("{prefix}-{r}-{i}");
                    let err_file = e.tmp.path().join(format!("{id}.err"));
                    match guarded(e, &["run", "--bundle", b.path(), &id], timeout(), &err_file) {
                        Ended::Hung => {
                            eprintln!("run {id} hung for {:?}", timeout());
                            hung.lock().unwrap().push(id.clone());
                            let _ = e.oci(&["delete", "-f", &id]);
                        }
                        Ended::Exited(0, _) => {}
                        Ended::Exited(c, err) => failed
                            .lock()
                            .unwrap()
                            .push(format!("{id}: exit {c}: {err}")),
                    }
                    let _ = std::fs::remove_file(err_file);
                });
            }
        });
    }
    let (hung, failed) = (hung.into_inner().unwrap(), failed.into_inner().unwrap());
    eprintln!(
        "{rounds} rounds of {size} parallel runs in {:?}; hung: {}; failed: {}",
        t.elapsed(),
        hung.len(),
        failed.len()
    );
    assert!(hung.is_empty(), "runs that hung: {hung:?}");
    assert!(
        failed.is_empty(),
        "runs that failed: {:?}",
        &failed[..failed.len().min(10)]
    );
    assert_clean(&e, &prefix, fds);
}

#[test]
fn watchdog_catches_a_hang() {
    // The guard itself must work: a container that never ends is reported, not waited for.
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let e = Env::new();
    let b = bundle(&e, "b", &["sleep", "100"]);
    let id = unique_id("hang");
    let t = Instant::now();
    let r = guarded(
        &e,
        &["run", "--bundle", b.path(), &id],
        Duration::from_millis(500),
        &e.tmp.path().join("hang.err"),
    );
    assert!(matches!(r, Ended::Hung));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(e.oci(&["delete", "-f", &id]).status.success());
    assert!(cgroup_dirs_named(&id).is_empty());
}
