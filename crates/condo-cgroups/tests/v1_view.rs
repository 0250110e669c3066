//! Runs the kernel tests (tests/kernel.rs, already built by `cargo test`) on a pure cgroup v1
//! view of this host: a private mount namespace where /sys/fs/cgroup/unified is unmounted, as
//! a v1-only distribution (or crun on this host) sees it. Skips with a printed reason where the
//! host has no v1 hierarchies.

use std::path::PathBuf;
use std::process::Command;

fn kernel_test_binary() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let dir = me.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("kernel-") && !n.contains('.')
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
}

#[test]
fn kernel_tests_pass_on_cgroup_v1() {
    if !std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        println!("skipped: this host has no cgroup v1 memory hierarchy");
        return;
    }
    let Some(bin) = kernel_test_binary() else {
        println!("skipped: the kernel test binary was not found next to this one");
        return;
    };
    let script = "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" --test-threads=1";
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(&bin)
        .env("CONDO_EXPECT_MODE", "v1")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kernel tests on the v1 view failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("test result: ok"), "{stdout}\n{stderr}");
    println!("{stdout}");
}
