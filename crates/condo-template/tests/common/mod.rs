//! Shared helpers: stores in a temp dir, a builder, and running an instance in a container with
//! its own network namespace.
#![allow(dead_code)]

use condo_storage::content::ContentStore;
use condo_storage::image::ImageStore;
use condo_storage::instance::InstanceStore;
use condo_storage::snapshot::{self, OverlaySnapshotter, Snapshotter};
use condo_template::runner::{step_spec, StepProcess, StepRunner};
use condo_template::{BuildOptions, Builder, Event, Instance};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stores and a builder in one temp dir.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub images: ImageStore,
    pub snap: Arc<dyn Snapshotter>,
    pub instances: InstanceStore,
    pub builder: Builder,
}

pub fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates")
}

pub fn helper() -> PathBuf {
    env!("CARGO_BIN_EXE_condo-build-step").into()
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("condo-tpl-test")
            .tempdir()
            .unwrap();
        let t = tmp.path();
        let content = ContentStore::open(t.join("content")).unwrap();
        let images = ImageStore::open(t.join("images"), content).unwrap();
        let snap: Arc<dyn Snapshotter> =
            Arc::new(OverlaySnapshotter::open(t.join("snap")).unwrap());
        let instances = InstanceStore::open(t.join("instances"), snap.clone()).unwrap();
        let opts = BuildOptions {
            state: t.join("builder"),
            runner: StepRunner {
                helper: helper(),
                runtime_root: t.join("run"),
            },
            library: Some(library()),
            mirror: None,
            host_busybox: "/bin/busybox".into(),
            no_cache: false,
        };
        let builder = Builder::open(images.clone(), snap.clone(), opts).unwrap();
        Env {
            tmp,
            images,
            snap,
            instances,
            builder,
        }
    }

    /// Builds a library template, printing its progress; returns the result.
    pub fn build(&self, name: &str) -> condo_template::Built {
        let mut log = |e: Event| match e {
            Event::Step {
                index,
                total,
                label,
                cached,
            } => {
                eprintln!(
                    "[{index}/{total}] {label}{}",
                    if cached { " (cached)" } else { "" }
                )
            }
            Event::Log(l) => eprintln!("    {l}"),
            Event::Done {
                label,
                seconds,
                size,
            } => eprintln!("    done: {label} in {seconds:.2}s, {size} bytes"),
        };
        self.builder.build(&library().join(name), &mut log).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for i in self.instances.list().unwrap_or_default() {
            let _ = self.instances.delete(&i.name);
        }
    }
}

/// An instance running in a container (its own network namespace) through the step helper.
pub struct Running {
    pub child: Child,
    pub bundle: PathBuf,
    pub log: PathBuf,
    stopped: bool,
}

impl Drop for Running {
    /// A failed test still ends its container and unmounts its root filesystem.
    fn drop(&mut self) {
        if !self.stopped {
            if let Ok(s) =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.child.id()))
            {
                if let Some(pid) = s.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
            let _ = self.child.wait();
            let _ = snapshot::unmount(&self.bundle.join("rootfs"));
        }
    }
}

impl Running {
    /// Mounts the instance's root filesystem and starts its init in a container.
    pub fn start(env: &Env, inst: &Instance) -> Running {
        let bundle = env.tmp.path().join(format!("bundle-{}", inst.name));
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        snapshot::mount_all(&inst.mounts, &rootfs).unwrap();
        let p = StepProcess {
            args: inst.args.clone(),
            env: inst.env.clone(),
            cwd: inst.cwd.clone(),
            network: false,
        };
        let spec = step_spec(&p, &rootfs);
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let log = bundle.join("out.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(helper())
            .arg(env.tmp.path().join("run"))
            .arg(format!("inst-{}-{}", inst.name, std::process::id()))
            .arg(&bundle)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        Running {
            child,
            bundle,
            log,
            stopped: false,
        }
    }

    /// The pid of the container's init (the helper's child).
    pub fn init_pid(&self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.child.id();
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
                if let Some(c) = s.split_whitespace().next() {
                    return c.parse().unwrap();
                }
            }
            assert!(Instant::now() < deadline, "no container init");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET `path` on `port` inside the container's network namespace, from a thread that
    /// joins it (loopback brought up first); retries for a few seconds.
    pub fn http_get(&self, port: u16, path: &str) -> String {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.init_pid())).unwrap();
        let path = path.to_string();
        std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            // A child forked from this thread lives in the same network namespace.
            let st = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .unwrap();
            assert!(st.success());
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match std::net::TcpStream::connect(("127.0.0.1", port)) {
                    Ok(mut s) => {
                        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
                        let mut out = String::new();
                        s.read_to_string(&mut out).unwrap();
                        return out;
                    }
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => panic!("connect to port {port}: {e}"),
                }
            }
        })
        .join()
        .unwrap()
    }

    /// Sends SIGTERM to the init and waits for the container to end; returns the exit code
    /// and how long the shutdown took.
    pub fn stop(mut self) -> (i32, Duration) {
        let r = self.stop_inner();
        self.stopped = true;
        r
    }

    fn stop_inner(&mut self) -> (i32, Duration) {
        let pid = self.init_pid();
        let t0 = Instant::now();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("container did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = t0.elapsed();
        let _ = snapshot::unmount(&self.bundle.join("rootfs"));
        (code, took)
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Running {
    /// Brings up loopback in the container's network namespace.
    pub fn lo_up(&self) {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.init_pid())).unwrap();
        std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            assert!(Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .unwrap()
                .success());
        })
        .join()
        .unwrap();
    }

    /// Runs `args` in a second container on the same root filesystem, joined to this one's
    /// network namespace; returns its exit code and output.
    pub fn exec(&self, env: &Env, args: &[&str]) -> (i32, String) {
        let n = std::sync::atomic::AtomicUsize::new(0)
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let b = self.bundle.with_extension(format!(
            "exec{}-{}",
            n,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&b).unwrap();
        let p = StepProcess {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            cwd: "/".into(),
            network: true,
        };
        let mut spec = step_spec(&p, &self.bundle.join("rootfs"));
        let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(serde_json::json!({"type": "network", "path": format!("/proc/{}/ns/net", self.init_pid())}));
        spec["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/etc/resolv.conf");
        std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
        let mut out = String::new();
        let mut cmd = Command::new(helper());
        cmd.arg(env.tmp.path().join("run"))
            .arg(format!(
                "exec-{}-{}",
                std::process::id(),
                b.file_name().unwrap().to_string_lossy().replace('.', "-")
            ))
            .arg(&b);
        let code = condo_template::runner::run_logged(&mut cmd, &mut |l| {
            out.push_str(l);
            out.push('\n');
        })
        .unwrap();
        (code, out)
    }
}
