//! Shared helpers of the kernel tests: unique cgroups that clean up, and helper children
//! (this same test binary run in a "helper" mode, so it works in a bare guest too).

#![allow(dead_code)]

use condo_cgroups::{Cgroup, Mode};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serialises tests whose timing matters (CPU measurements, freezing).
pub static CPU_LOCK: Mutex<()> = Mutex::new(());

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Parent of every test cgroup.
pub const TEST_PARENT: &str = "/condo-test";

/// Whether the kernel tests can run here (root and a cgroup filesystem).
pub fn usable() -> bool {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: the cgroup kernel tests need root");
        return false;
    }
    if condo_cgroups::detect().is_err() {
        println!("skipped: no cgroup filesystem at /sys/fs/cgroup");
        return false;
    }
    true
}

/// A uniquely named cgroup that is killed and removed on drop.
pub struct TestCgroup {
    pub cg: Cgroup,
}

impl TestCgroup {
    /// Resolve (but do not create) a unique cgroup for test `name`.
    pub fn resolve(name: &str) -> TestCgroup {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = format!("{TEST_PARENT}/{}-{n}-{name}", std::process::id());
        TestCgroup {
            cg: Cgroup::resolve(Some(&path), name, false).expect("resolve"),
        }
    }

    /// Resolve and create a cgroup right below the root, so its shares (weight) compete
    /// with the host's own tasks directly (for CPU measurements on a busy box).
    pub fn new_top(name: &str) -> TestCgroup {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = format!("{TEST_PARENT}-{}-{n}-{name}", std::process::id());
        let t = TestCgroup {
            cg: Cgroup::resolve(Some(&path), name, false).expect("resolve"),
        };
        t.cg.create().expect("create");
        t
    }

    /// Resolve and create.
    pub fn new(name: &str) -> TestCgroup {
        let t = TestCgroup::resolve(name);
        t.cg.create().expect("create");
        t
    }

    /// Whether any hierarchy still has the directory.
    pub fn any_dir_exists(&self) -> bool {
        self.cg.hierarchies().iter().any(|h| h.dir.exists())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if self.any_dir_exists() {
            let _ = self.cg.thaw();
            let _ = self.cg.kill_all(libc::SIGKILL);
            let _ = self.cg.remove();
        }
        // The last test out takes the shared parent away (the others find it busy).
        for h in self
            .cg
            .hierarchies()
            .iter()
            .filter(|_| self.cg.path().starts_with("/condo-test/"))
        {
            if let Some(p) = h.dir.parent() {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}

/// A helper child: this test binary in `mode`; it waits for "go" on stdin before working.
pub struct Helper {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    /// Start the helper in `mode` with `args`; it does nothing until [`Helper::go`].
    pub fn spawn(mode: &str, args: &[&str]) -> Helper {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "helper_entry",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env("CONDO_CG_HELPER", mode)
            .env("CONDO_CG_HELPER_ARGS", args.join(" "))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn helper");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Helper { child, out }
    }

    /// Spawn, move into `cg`, and let it start.
    pub fn start_in(cg: &Cgroup, mode: &str, args: &[&str]) -> Helper {
        let mut h = Helper::spawn(mode, args);
        cg.add_pid(h.pid()).expect("add_pid");
        h.go();
        h
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        let _ = stdin.write_all(b"go\n");
        let _ = stdin.flush();
    }

    /// The next line the helper printed with the HELPER: prefix.
    pub fn line(&mut self) -> Option<String> {
        let mut s = String::new();
        loop {
            s.clear();
            if self.out.read_line(&mut s).ok()? == 0 {
                return None;
            }
            if let Some(rest) = s.trim_end().strip_prefix("HELPER:") {
                return Some(rest.to_string());
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Body of helper mode; returns without doing anything when not a helper.
pub fn helper_main() {
    let Ok(mode) = std::env::var("CONDO_CG_HELPER") else {
        return;
    };
    let args = std::env::var("CONDO_CG_HELPER_ARGS").unwrap_or_default();
    let args: Vec<&str> = args.split_whitespace().collect();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let say = |s: String| {
        let mut o = std::io::stdout();
        let _ = writeln!(o, "HELPER:{s}");
        let _ = o.flush();
    };
    match mode.as_str() {
        "sleep" => std::thread::sleep(Duration::from_secs(3600)),
        "spin" => {
            let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(|| {
                        let mut x = 0u64;
                        loop {
                            x = std::hint::black_box(
                                x.wrapping_mul(6364136223846793005).wrapping_add(1),
                            );
                        }
                    })
                })
                .collect();
            for h in hs {
                let _ = h.join();
            }
        }
        "alloc" => {
            // Allocate and touch MiB, then report and wait.
            let mib: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
            let mut v: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mib {
                let mut chunk = vec![0u8; 1 << 20];
                for p in chunk.iter_mut().step_by(4096) {
                    *p = 1;
                }
                v.push(std::hint::black_box(chunk));
            }
            say(format!("allocated {mib}"));
            std::thread::sleep(Duration::from_secs(3600));
        }
        "forkbomb" => {
            let mut kids = Vec::new();
            let exe = std::env::current_exe().expect("exe");
            loop {
                let r = Command::new(&exe)
                    .args(["--exact", "helper_entry", "-q"])
                    .env("CONDO_CG_HELPER", "sleep")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
                match r {
                    Ok(c) => kids.push(c),
                    Err(e) => {
                        say(format!("stopped after {} children: {e}", kids.len()));
                        break;
                    }
                }
                if kids.len() > 500 {
                    say("never stopped".into());
                    break;
                }
            }
            std::thread::sleep(Duration::from_secs(3600));
        }
        "open" => {
            for p in &args {
                let r = std::fs::OpenOptions::new().read(true).open(p);
                say(format!("{p} {}", if r.is_ok() { "ok" } else { "denied" }));
            }
        }
        _ => say(format!("unknown mode {mode}")),
    }
    std::process::exit(0);
}

/// Wait for `cond` up to `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Total CPU time of the cgroup in nanoseconds.
pub fn cpu_ns(cg: &Cgroup) -> u64 {
    cg.stats().expect("stats").cpu.usage.total
}

/// Read a file of the hierarchy that holds `controller` (v1) or of the unified one.
pub fn read_ctl(cg: &Cgroup, controller: &str, file: &str) -> String {
    let h = cg
        .hierarchies()
        .iter()
        .find(|h| h.version == 1 && h.controllers.iter().any(|c| c == controller))
        .or_else(|| cg.hierarchies().iter().find(|h| h.version == 2))
        .expect("hierarchy");
    std::fs::read_to_string(h.dir.join(file))
        .unwrap_or_else(|e| panic!("read {file}: {e}"))
        .trim()
        .to_string()
}

pub fn is_v2(cg: &Cgroup) -> bool {
    cg.mode() == Mode::V2
}
