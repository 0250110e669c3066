//! The lifecycle verbs and their status rules, through the real binary.

mod common;
use common::*;

#[test]
fn run_reports_exit_code_and_output() {
    let e = Env::new();
    let b = e.bundle("b", &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = unique_id("run");
    let (code, out, err) = e.run(&b, &id);
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out.trim(), "out");
    assert!(err.contains("err"));
    // Foreground run deletes the container.
    assert!(!e.root.join(&id).exists());
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn killed_by_signal_gives_128_plus_signal() {
    let e = Env::new();
    let mut b = e.bundle("b", &["sh", "-c", "kill -9 $$"]);
    // As pid 1 of its own namespace the shell would be immune to its own SIGKILL.
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.save();
    let (code, _, err) = e.run(&b, &unique_id("sig"));
    assert_eq!(code, 137, "{err}");
}

#[test]
fn create_start_state_kill_delete() {
    let e = Env::new();
    let b = e.bundle("b", &["sleep", "100"]);
    let id = unique_id("life");
    let pidf = e.tmp.path().join("pid");
    let o = e.oci(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pidf.to_str().unwrap(),
        &id,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(e.status(&id), "created");
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
    // The state document has runc's shape.
    let st: serde_json::Value = serde_json::from_slice(&e.oci(&["state", &id]).stdout).unwrap();
    for k in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(k).is_some(), "state lacks {k}: {st}");
    }
    assert_eq!(st["pid"], pid);
    // delete refuses a container that is not stopped.
    let o = e.oci(&["delete", &id]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("created"), "{}", text(&o.stderr));
    assert!(e.oci(&["start", &id]).status.success());
    assert_eq!(e.status(&id), "running");
    // start only from created.
    let o = e.oci(&["start", &id]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("running"));
    // list in both formats.
    let l: serde_json::Value =
        serde_json::from_slice(&e.oci(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(l[0]["id"], id.as_str());
    assert!(text(&e.oci(&["list", "-q"]).stdout).contains(&id));
    // ps json gives the init's pid.
    let ps: Vec<i32> =
        serde_json::from_slice(&e.oci(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(ps.contains(&pid), "{ps:?}");
    // pause and resume.
    assert!(e.oci(&["pause", &id]).status.success());
    assert_eq!(e.status(&id), "paused");
    assert!(e.oci(&["resume", &id]).status.success());
    assert_eq!(e.status(&id), "running");
    assert!(e.oci(&["kill", &id, "KILL"]).status.success());
    let t = std::time::Instant::now();
    while e.status(&id) != "stopped" {
        assert!(t.elapsed().as_secs() < 10, "did not stop");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = e.oci(&["delete", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!e.root.join(&id).exists());
    assert!(cgroup_dirs_named(&id).is_empty());
    assert!(!e.oci(&["state", &id]).status.success());
}

#[test]
fn delete_force_stops_a_running_container() {
    let e = Env::new();
    let b = e.bundle("b", &["sleep", "100"]);
    let id = unique_id("force");
    assert!(e
        .oci(&["run", "-d", "--bundle", b.path(), &id])
        .status
        .success());
    assert_eq!(e.status(&id), "running");
    let o = e.oci(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn kill_signal_forms() {
    let e = Env::new();
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "trap 'exit 3' USR1; while true; do sleep 0.05; done",
        ],
    );
    let id = unique_id("killsig");
    assert!(e
        .oci(&["run", "-d", "--bundle", b.path(), &id])
        .status
        .success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!e.oci(&["kill", &id, "NOPE"]).status.success());
    assert!(e.oci(&["kill", &id, "SIGUSR1"]).status.success());
    let t = std::time::Instant::now();
    while e.status(&id) != "stopped" {
        assert!(t.elapsed().as_secs() < 10);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(e.oci(&["delete", &id]).status.success());
}

#[test]
fn exec_runs_inside_and_returns_code() {
    let e = Env::new();
    let b = e.bundle("b", &["sleep", "100"]);
    let id = unique_id("exec");
    assert!(e
        .oci(&["run", "-d", "--bundle", b.path(), &id])
        .status
        .success());
    let o = e.oci(&[
        "exec",
        "--env",
        "X=42",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $X $(pwd) $(hostname); exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "42 /tmp condo");
    // A process file as containerd writes it.
    let pf = e.tmp.path().join("process.json");
    std::fs::write(&pf, r#"{"args":["sh","-c","echo $$; cat /proc/self/status | grep NoNewPrivs"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0},"noNewPrivileges":true}"#).unwrap();
    let o = e.oci(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let o = e.oci(&["exec", &id, "/nonexistent"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("nonexistent"));
    assert!(e.oci(&["delete", "-f", &id]).status.success());
}

#[test]
fn update_changes_limits_live() {
    let e = Env::new();
    let b = e.bundle("b", &["sleep", "100"]);
    let id = unique_id("upd");
    assert!(e
        .oci(&["run", "-d", "--bundle", b.path(), &id])
        .status
        .success());
    let o = e.oci(&["update", "--memory", "64m", "--pids-limit", "50", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mem = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/condo/{id}/memory.limit_in_bytes"
    ))
    .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/condo/{id}/memory.max")))
    .unwrap();
    assert_eq!(mem.trim(), (64 << 20).to_string());
    let o = e.oci(&["events", "--stats", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["limit"], 50);
    assert!(e.oci(&["delete", "-f", &id]).status.success());
}

#[test]
fn features_and_version() {
    let o = std::process::Command::new(bin())
        .arg("features")
        .output()
        .unwrap();
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() == 8);
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "SCMP_ACT_NOTIFY"));
    let o = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(text(&o.stdout).contains("condo-oci version"));
}

#[test]
fn runs_on_a_pure_v1_view_with_limits() {
    if !std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        println!("skipped: no cgroup v1 memory hierarchy here");
        return;
    }
    let e = Env::new();
    let mut b = e.bundle(
        "b",
        &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup"],
    );
    b.spec["linux"]["resources"] =
        serde_json::json!({"memory": {"limit": 50331648}, "pids": {"limit": 33}});
    b.save();
    let id = unique_id("v1");
    let script = format!(
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec {} --root {} run --bundle {} {id}",
        bin(),
        e.root.display(),
        b.path()
    );
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("50331648\n33\n"), "{out}");
    assert!(!out.contains("unified"), "{out}");
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn new_network_namespace_has_loopback_up() {
    let e = Env::new();
    let b = e.bundle(
        "b",
        &["sh", "-c", "cat /sys/class/net/lo/flags; ls /sys/class/net"],
    );
    let (code, out, err) = e.run(&b, &unique_id("lo"));
    assert_eq!(code, 0, "{err}");
    let flags =
        u32::from_str_radix(out.lines().next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up: {out}");
    assert_eq!(out.lines().nth(1), Some("lo"), "{out}");
}
