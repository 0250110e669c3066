//! Running a test body in a fresh process of the test binary, for tests that change
//! process-wide state (seccomp, capabilities, limits, scheduling).

use std::process::{Child, Command, ExitStatus};

const ENV: &str = "CONDO_RUNTIME_TEST_CHILD";

/// Whether this process was started to run the child half of test `name`.
pub(crate) fn is_child(name: &str) -> bool {
    std::env::var(ENV).is_ok_and(|v| v == name)
}

/// Starts this test binary again, running only test `name` (a `module_path!()`-style path)
/// with the marker that makes [`is_child`] true, plus `envs`.
pub(crate) fn spawn(name: &str, envs: &[(&str, &str)]) -> Child {
    let filter = name.split_once("::").map_or(name, |(_, rest)| rest);
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        filter,
        "--exact",
        "--test-threads=1",
        "--nocapture",
        "--quiet",
    ])
    .env(ENV, name);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the test binary again")
}

/// Runs `body` in a new process (see [`spawn`]) and returns how that process ended; in the
/// new process itself, runs `body` and exits with the code it returns.
pub(crate) fn run_in_child(name: &str, body: impl FnOnce() -> i32) -> ExitStatus {
    if is_child(name) {
        let code = body();
        condo_sys::exit_now(code);
    }
    spawn(name, &[]).wait().expect("wait for the child")
}

/// Whether the tests run as root (the tests needing it are skipped otherwise).
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A field of `/proc/thread-self/status` (e.g. `CapEff`), trimmed.
pub(crate) fn status_field(name: &str) -> String {
    let s = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}
