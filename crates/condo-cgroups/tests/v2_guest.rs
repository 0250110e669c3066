//! Runs the kernel tests (tests/kernel.rs, already built by `cargo test`) inside a QEMU guest
//! on a pure cgroup v2 hierarchy, through tests/guest/vm-run. Builds nothing itself; skips
//! with a printed reason when qemu, a guest kernel or the kernel test binary is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `kernel-<hash>` test executable next to this one.
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
fn kernel_tests_pass_on_pure_cgroup_v2() {
    let vm_run = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/guest/vm-run");
    if !vm_run.exists() {
        println!("skipped: tests/guest/vm-run is missing");
        return;
    }
    if std::env::var_os("CONDO_SKIP_GUEST").is_some() {
        println!("skipped: CONDO_SKIP_GUEST is set");
        return;
    }
    let Some(bin) = kernel_test_binary() else {
        println!("skipped: the kernel test binary was not found next to this one");
        return;
    };
    let out = Command::new(&vm_run)
        .args(["--timeout", "400", "--smp", "2", "--mem", "1024"])
        .args(["--env", "CONDO_EXPECT_MODE=v2", "--"])
        .arg(&bin)
        .args(["--test-threads=1"])
        .output()
        .expect("run vm-run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(77) => {
            println!("skipped: {}", stderr.trim());
            return;
        }
        Some(0) => {}
        code => {
            panic!("kernel tests in the cgroup v2 guest failed ({code:?}):\n{stdout}\n{stderr}")
        }
    }
    println!("{stdout}");
    assert!(
        stdout.contains("test result: ok"),
        "no test result from the guest:\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("skipped: the cgroup kernel tests need root"),
        "{stdout}"
    );
}
