//! Benchmark: create + apply typical limits + enter (a fresh child) + remove.
//!
//! Usage: cgbench [ROUNDS] [--devices] [--phases]; prints median and p90 of the cgroup work per round
//! (spawning and reaping the child are not counted).

use condo_cgroups::resources::{Cpu, DeviceRule, Memory, Pids};
use condo_cgroups::{Cgroup, Resources};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn typical(devices: bool) -> Resources {
    let dev = |allow, kind: &str, major, minor, access: &str| DeviceRule {
        allow,
        kind: Some(kind.into()),
        major,
        minor,
        access: Some(access.into()),
    };
    Resources {
        memory: Some(Memory {
            limit: Some(256 << 20),
            swap: Some(256 << 20),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            ..Default::default()
        }),
        pids: Some(Pids { limit: Some(512) }),
        devices: devices.then(|| {
            vec![
                dev(false, "a", None, None, "rwm"),
                dev(true, "c", Some(1), Some(3), "rwm"),
                dev(true, "c", Some(1), Some(5), "rwm"),
                dev(true, "c", Some(1), Some(7), "rwm"),
                dev(true, "c", Some(1), Some(8), "rwm"),
                dev(true, "c", Some(1), Some(9), "rwm"),
                dev(true, "c", Some(5), Some(0), "rwm"),
                dev(true, "c", Some(5), Some(2), "rwm"),
                dev(true, "c", Some(136), None, "rwm"),
            ]
        }),
        ..Default::default()
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let devices = args.iter().any(|a| a == "--devices");
    let r = typical(devices);
    let mode = condo_cgroups::detect()?;
    let mut times = Vec::with_capacity(rounds);
    let mut phases: [Vec<Duration>; 4] = Default::default();
    let me = std::process::id();
    for i in 0..rounds {
        let mut child = Command::new("/bin/sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()?;
        let t0 = Instant::now();
        let cg = Cgroup::resolve(Some(&format!("/condo-bench/{me}-{i}")), "bench", false)?;
        cg.create()?;
        let ta = Instant::now();
        cg.apply(&r)?;
        let tb = Instant::now();
        cg.add_pid(child.id() as i32)?;
        let t1 = t0.elapsed();
        let tc = Instant::now();
        child.kill()?;
        child.wait()?;
        let t2 = Instant::now();
        cg.remove()?;
        let td = t2.elapsed();
        times.push(t1 + td);
        phases[0].push(ta - t0);
        phases[1].push(tb - ta);
        phases[2].push(tc - tb);
        phases[3].push(td);
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/unified/condo-bench");
    for h in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
        "unified", "",
    ] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{h}/condo-bench"));
    }
    times.sort();
    println!(
        "cgroups {mode:?}{}: create+apply+enter+remove over {rounds} rounds: median {:.3} ms, p90 {:.3} ms",
        if devices { " with 9 device rules" } else { "" },
        pct(&times, 0.5).as_secs_f64() * 1e3,
        pct(&times, 0.9).as_secs_f64() * 1e3
    );
    if args.iter().any(|a| a == "--phases") {
        for (name, mut v) in ["create", "apply", "enter", "remove"]
            .into_iter()
            .zip(phases)
        {
            v.sort();
            println!(
                "  {name}: median {:.3} ms",
                pct(&v, 0.5).as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
