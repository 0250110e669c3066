//! Times container network setup + teardown (attach + detach) with condo-net.
//!
//! Usage: `net_bench CYCLES STATE_DIR`; run it inside a private network namespace
//! (`unshare -n`). Prints one line per cycle: the microseconds it took.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use condo_net::{AttachRequest, Netns, NetworkSpec, Networks, NftCli, Options, PortPolicy, TcCli};

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
    let ns: OwnedFd = std::thread::spawn(|| -> std::io::Result<OwnedFd> {
        condo_sys::netns::unshare_net()?;
        Ok(File::open("/proc/thread-self/ns/net")?.into())
    })
    .join()
    .map_err(|_| "namespace thread panicked")??;
    let mut out = String::new();
    for i in 0..cycles {
        let req = AttachRequest {
            container: format!("bench{i}"),
            hostname: format!("bench{i}"),
            aliases: vec![],
            netns: Netns::Fd(ns.try_clone()?),
        };
        let t = Instant::now();
        nets.attach("bench", &req)?;
        let mid = t.elapsed().as_micros();
        nets.detach("bench", &req.container)?;
        out.push_str(&format!("{}\n", t.elapsed().as_micros()));
        if std::env::var_os("NET_BENCH_SPLIT").is_some() {
            eprintln!(
                "attach {mid} us, detach {} us",
                t.elapsed().as_micros() - mid
            );
        }
    }
    nets.remove_network("bench")?;
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}
