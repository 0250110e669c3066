//! Times container network setup and teardown with condo-net.
//!
//! Usage: `net_bench CYCLES STATE_DIR`; run it inside a private network namespace
//! (`unshare -n`). Each cycle makes a fresh namespace for its "container" (not timed), then
//! times setup (`attach`) and teardown (`release` and dropping the namespace, as the manager
//! does once a container's last process has ended). Prints one line per cycle: setup and
//! teardown in microseconds. After the last cycle it waits until the kernel has removed every
//! released veth and prints `drain MICROSECONDS` on stderr.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use condo_net::{AttachRequest, Netns, NetworkSpec, Networks, NftCli, Options, PortPolicy, TcCli};

fn new_netns() -> Result<OwnedFd, Box<dyn std::error::Error>> {
    let fd = std::thread::spawn(|| -> std::io::Result<OwnedFd> {
        condo_sys::netns::unshare_net()?;
        Ok(File::open("/proc/thread-self/ns/net")?.into())
    })
    .join()
    .map_err(|_| "namespace thread panicked")??;
    Ok(fd)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().unwrap_or_else(|| "20".into()).parse()?;
    let dir = args.next().ok_or("usage: net_bench CYCLES STATE_DIR")?;
    let mut nets = Networks::open(Options {
        state_dir: dir.into(),
        port_policy: PortPolicy::default(),
        dns_upstreams: Some(Vec::new()),
        firewall: Arc::new(NftCli::default()),
        tc: Arc::new(TcCli::default()),
    })?;
    if nets.get("bench").is_err() {
        nets.create_network(&NetworkSpec {
            name: "bench".into(),
            subnet: "10.91.0.0/24".into(),
            ..Default::default()
        })?;
    }
    let mut out = String::new();
    for i in 0..cycles {
        let ns = new_netns()?;
        let req = AttachRequest {
            container: format!("bench{i}"),
            hostname: format!("bench{i}"),
            aliases: vec![],
            netns: Netns::Fd(ns),
        };
        let t = Instant::now();
        nets.attach("bench", &req)?;
        let setup = t.elapsed();
        let t = Instant::now();
        nets.release("bench", &req.container)?;
        drop(req);
        let teardown = t.elapsed();
        out.push_str(&format!("{} {}\n", setup.as_micros(), teardown.as_micros()));
    }
    let t = Instant::now();
    while nets.settle()? > 0 {
        if t.elapsed() > Duration::from_secs(30) {
            return Err("released veths still present after 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("drain {}", t.elapsed().as_micros());
    nets.remove_network("bench")?;
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}
