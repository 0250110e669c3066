//! condo-oci on a pure cgroup v2 host: a QEMU guest (tests/guest/vm-run) runs containers with
//! limits and checks them from inside (memory.max, pids.max, the cgroup namespace, OOM kill,
//! freeze). Skips with a printed reason where no guest can run here.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::json;

#[test]
fn runtime_works_on_pure_cgroup_v2() {
    let vm_run = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/guest/vm-run");
    if std::env::var_os("CONDO_SKIP_GUEST").is_some() || !vm_run.exists() {
        println!("skipped: CONDO_SKIP_GUEST is set or tests/guest/vm-run is missing");
        return;
    }
    let e = common::Env::new();
    let mut b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /proc/self/cgroup",
        ],
    );
    b.spec["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 20},
        "cpu": {"quota": 50000, "period": 100000},
        "devices": [{"allow": false, "access": "rwm"}]
    });
    b.save();
    let mut hog = e.bundle(
        "hog",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],
    );
    hog.spec["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    hog.save();
    let mut sleeper = e.bundle("sleeper", &["sleep", "30"]);
    sleeper.spec["linux"]["resources"] = json!({"pids": {"limit": 10}});
    sleeper.save();
    let script = r#"
set -u
O=/condo-oci
$O run --bundle /g/b v2a; echo "rc_a=$?"
$O run --bundle /g/hog v2hog; echo "rc_hog=$?"
$O run -d --bundle /g/sleeper v2s </dev/null >/dev/null 2>&1; echo "rc_s=$?"
$O pause v2s && cat /sys/fs/cgroup/condo/v2s/cgroup.freeze && $O state v2s | grep -o '"status": "[a-z]*"'
$O resume v2s && $O state v2s | grep -o '"status": "[a-z]*"'
$O update --pids-limit 7 v2s && cat /sys/fs/cgroup/condo/v2s/pids.max
$O delete --force v2s; echo "rc_del=$?"
ls /sys/fs/cgroup/condo
echo done
"#;
    std::fs::write(e.tmp.path().join("run.sh"), script).unwrap();
    let out = Command::new(&vm_run)
        .args(["--timeout", "240", "--include"])
        .arg(format!("{}:/condo-oci", common::bin()))
        .arg("--include")
        .arg(format!("{}:/g", e.tmp.path().display()))
        .args(["--", "sh", "/g/run.sh"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        println!("skipped: {}", stderr.trim());
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "guest failed:\n{stdout}\n{stderr}"
    );
    for want in [
        "67108864", // memory.max
        "\n20\n",   // pids.max
        "0::/\n",   // the cgroup namespace is rooted at the container's cgroup
        "rc_a=0",
        "rc_hog=137", // OOM-killed inside its container only
        "rc_s=0",
        "\n1\n\"status\": \"paused\"",
        "\"status\": \"running\"",
        "\n7\n",
        "rc_del=0",
        "done",
    ] {
        assert!(
            stdout.contains(want),
            "missing {want:?} in guest output:\n{stdout}\n{stderr}"
        );
    }
    println!("{stdout}");
    // Nothing of the containers is left in the guest's cgroup tree.
    let tail = stdout.split("rc_del=0").nth(1).unwrap_or("");
    assert!(
        !tail.contains("v2a") && !tail.contains("v2s") && !tail.contains("v2hog"),
        "{stdout}"
    );
}
