//! Resource tests against the real kernel (root). They branch on the host's layout, so the
//! same binary runs on this hybrid host and inside the pure cgroup v2 guest (v2_guest.rs).

mod support;

use condo_cgroups::resources::{BlockIo, Cpu, DeviceRule, HugepageLimit, Memory, Pids};
use condo_cgroups::{FreezerState, Mode, Resources, SavedCgroup};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn helper_entry() {
    helper_main();
}

#[test]
fn layout_is_the_expected_one() {
    // The guest runner sets CONDO_EXPECT_MODE=v2 so a misbooted guest cannot pass as v2.
    let mode = condo_cgroups::detect();
    if let Ok(want) = std::env::var("CONDO_EXPECT_MODE") {
        let got = format!("{:?}", mode.expect("detect")).to_lowercase();
        assert_eq!(got, want);
    }
}

fn mem(limit: i64) -> Resources {
    Resources {
        memory: Some(Memory {
            limit: Some(limit),
            swap: Some(limit),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn memory_hog_is_oom_killed_inside_its_cgroup() {
    if !usable() {
        return;
    }
    let t = TestCgroup::new("oom");
    t.cg.apply(&mem(32 << 20)).expect("apply");
    let mut notifier = t.cg.oom_notifier().expect("notifier");
    assert_eq!(t.cg.oom_count().unwrap(), 0);
    let mut hog = Helper::start_in(&t.cg, "alloc", &["256"]);
    let status = hog.child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "hog should be OOM-killed, got {status:?}"
    );
    assert!(hog.line().is_none(), "hog reported success past its limit");
    assert!(wait_for(Duration::from_secs(5), || t
        .cg
        .oom_count()
        .unwrap_or(0)
        >= 1));
    let mut fds = [rustix::event::PollFd::new(
        &notifier,
        rustix::event::PollFlags::IN,
    )];
    let ts = rustix::event::Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    let n = rustix::event::poll(&mut fds, Some(&ts)).expect("poll");
    assert_eq!(n, 1, "OOM notifier did not fire");
    let mut fired = notifier.consume().expect("consume");
    // v2 may report another memory.events change first.
    for _ in 0..5 {
        if fired {
            break;
        }
        fired = notifier.consume().expect("consume");
    }
    assert!(fired);
    let stats = t.cg.stats().unwrap();
    assert!(
        stats.memory.usage.max >= 30 << 20,
        "peak {:?}",
        stats.memory.usage
    );
    let _ = notifier.as_fd();
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    if !usable() {
        return;
    }
    let t = TestCgroup::new("pids");
    t.cg.apply(&Resources {
        pids: Some(Pids { limit: Some(8) }),
        ..Default::default()
    })
    .unwrap();
    let mut bomb = Helper::start_in(&t.cg, "forkbomb", &[]);
    let line = bomb.line().expect("forkbomb report");
    // Threads count as tasks too, so fewer than 8 children fit; what matters is that the
    // spawn failed with EAGAIN and the count never passed the limit.
    assert!(
        line.starts_with("stopped after ") && line.contains("os error 11"),
        "{line}"
    );
    let stats = t.cg.stats().unwrap();
    assert_eq!(stats.pids.limit, 8);
    assert!(
        stats.pids.current <= 8 && stats.pids.current >= 2,
        "{:?}",
        stats.pids
    );
    assert!(t.cg.pids().unwrap().len() <= 8);
    t.cg.kill_all(libc::SIGKILL).unwrap();
    assert!(t.cg.pids().unwrap().is_empty());
}

fn measure_cpu(t: &TestCgroup, secs: f64) -> f64 {
    let c0 = cpu_ns(&t.cg);
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    (cpu_ns(&t.cg) - c0) as f64 / w0.elapsed().as_nanos() as f64
}

fn cpu(shares: u64, quota: i64) -> Resources {
    Resources {
        cpu: Some(Cpu {
            shares: Some(shares),
            quota: Some(quota),
            period: Some(100_000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn cpu_quota_half_a_cpu_and_live_update() {
    if !usable() {
        return;
    }
    let _lock = CPU_LOCK.lock();
    let t = TestCgroup::new_top("cpu");
    // High shares, so that other work on this box does not starve the measurement.
    t.cg.apply(&cpu(262_144, 50_000)).unwrap();
    let _spin = Helper::start_in(&t.cg, "spin", &["2"]);
    std::thread::sleep(Duration::from_millis(200));
    let used = measure_cpu(&t, 2.0);
    assert!(
        (0.45..=0.55).contains(&used),
        "0.5 CPU quota measured {used:.3}"
    );
    t.cg.update(&Resources {
        cpu: Some(Cpu {
            quota: Some(25_000),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let used = measure_cpu(&t, 1.0);
    assert!(
        (0.22..=0.28).contains(&used),
        "0.25 CPU after update measured {used:.3}"
    );
    let thr = t.cg.stats().unwrap().cpu.throttling;
    assert!(thr.throttled_periods > 0 && thr.periods >= thr.throttled_periods);
}

#[test]
fn memory_update_takes_effect_live() {
    if !usable() {
        return;
    }
    let t = TestCgroup::new("memupd");
    t.cg.apply(&mem(16 << 20)).unwrap();
    t.cg.update(&mem(256 << 20)).unwrap();
    let want = (256u64 << 20).to_string();
    if is_v2(&t.cg) {
        assert_eq!(read_ctl(&t.cg, "memory", "memory.max"), want);
    } else {
        assert_eq!(read_ctl(&t.cg, "memory", "memory.limit_in_bytes"), want);
    }
    let mut h = Helper::start_in(&t.cg, "alloc", &["64"]);
    assert_eq!(
        h.line().as_deref(),
        Some("allocated 64"),
        "64 MiB should fit after the update"
    );
    let usage = t.cg.stats().unwrap().memory.usage.usage;
    assert!(usage >= 60 << 20, "usage {usage}");
    // checkBeforeUpdate refuses a limit below the usage, and changes nothing.
    let mut low = mem(8 << 20);
    low.memory.as_mut().unwrap().check_before_update = Some(true);
    let e = t.cg.update(&low).unwrap_err().to_string();
    assert!(e.starts_with("linux.resources.memory.limit: "), "{e}");
    assert!(
        h.child.try_wait().unwrap().is_none(),
        "helper must survive a refused update"
    );
}

#[test]
fn freeze_stops_progress_and_thaw_resumes() {
    if !usable() {
        return;
    }
    let _lock = CPU_LOCK.lock();
    let t = TestCgroup::new_top("freeze");
    let _spin = Helper::start_in(&t.cg, "spin", &["1"]);
    std::thread::sleep(Duration::from_millis(100));
    t.cg.freeze().unwrap();
    assert_eq!(t.cg.freezer_state().unwrap(), FreezerState::Frozen);
    // Let the last slice's accounting land before the first reading.
    std::thread::sleep(Duration::from_millis(50));
    let frozen = measure_cpu(&t, 0.5);
    assert!(frozen < 0.02, "frozen cgroup used {frozen:.3} CPU");
    t.cg.thaw().unwrap();
    assert_eq!(t.cg.freezer_state().unwrap(), FreezerState::Thawed);
    let thawed = measure_cpu(&t, 0.5);
    assert!(thawed > 0.2, "thawed cgroup used only {thawed:.3} CPU");
}

#[test]
fn kill_all_empties_the_cgroup() {
    if !usable() {
        return;
    }
    let t = TestCgroup::new("kill");
    let mut hs: Vec<Helper> = (0..4)
        .map(|_| Helper::start_in(&t.cg, "sleep", &[]))
        .collect();
    assert_eq!(t.cg.pids().unwrap().len(), 4);
    t.cg.kill_all(libc::SIGTERM).unwrap();
    for h in hs.iter_mut() {
        let _ = h.child.wait();
    }
    assert!(t.cg.pids().unwrap().is_empty());
    let _more: Vec<Helper> = (0..3)
        .map(|_| Helper::start_in(&t.cg, "spin", &["1"]))
        .collect();
    t.cg.freeze().unwrap();
    t.cg.kill_all(libc::SIGKILL).unwrap();
    assert!(t.cg.pids().unwrap().is_empty());
    t.cg.remove().unwrap();
    assert!(!t.any_dir_exists());
}

#[test]
fn bad_input_names_the_field_and_leaves_nothing() {
    if !usable() {
        return;
    }
    let cases: Vec<(Resources, &str)> = vec![
        (cpu(1024, -5), "linux.resources.cpu.quota: -5 is negative"),
        (
            Resources {
                cpu: Some(Cpu {
                    cpus: Some("0-999".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "linux.resources.cpu.cpus: \"0-999\" names CPUs this host lacks",
        ),
        (
            Resources {
                devices: Some(vec![
                    DeviceRule {
                        allow: false,
                        ..Default::default()
                    },
                    DeviceRule {
                        allow: true,
                        kind: Some("q".into()),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            },
            "linux.resources.devices[1].type \"q\" is not a device type",
        ),
        (
            Resources {
                block_io: Some(BlockIo {
                    weight: Some(5000),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "linux.resources.blockIO.weight: 5000 out of range 10-1000",
        ),
    ];
    for (r, want) in cases {
        let t = TestCgroup::resolve("bad");
        let e = t.cg.setup(&r).unwrap_err().to_string();
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
        assert!(
            !t.any_dir_exists(),
            "{want}: a cgroup directory was left behind"
        );
        // apply after create refuses the same input before writing anything.
        t.cg.create().unwrap();
        assert!(t.cg.apply(&r).unwrap_err().to_string().starts_with(want));
        t.cg.remove().unwrap();
        assert!(!t.any_dir_exists());
    }
    // A failure found only when writing still leaves nothing behind with setup().
    let t = TestCgroup::resolve("badwrite");
    let r = Resources {
        unified: Some(
            [("nosuch.file".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    };
    let e = t.cg.setup(&r).unwrap_err().to_string();
    assert!(
        e.starts_with("linux.resources.unified.\"nosuch.file\""),
        "{e}"
    );
    assert!(!t.any_dir_exists());
}

#[test]
fn devices_rules_are_enforced() {
    if !usable() {
        return;
    }
    let rules = vec![
        DeviceRule {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        },
        DeviceRule {
            allow: true,
            kind: Some("c".into()),
            major: Some(1),
            minor: Some(3),
            access: Some("rwm".into()),
        },
    ];
    let t = TestCgroup::new("dev");
    t.cg.apply(&Resources {
        devices: Some(rules.clone()),
        ..Default::default()
    })
    .unwrap();
    let mut h = Helper::start_in(&t.cg, "open", &["/dev/null", "/dev/zero"]);
    assert_eq!(h.line().as_deref(), Some("/dev/null ok"));
    assert_eq!(h.line().as_deref(), Some("/dev/zero denied"));
    if let Some(u) = t.cg.unified_dir().filter(|_| t.cg.mode() == Mode::V2) {
        assert_eq!(
            condo_cgroups::devices::attached_programs(u).unwrap().len(),
            1
        );
        // An update replaces the program instead of stacking another.
        t.cg.update(&Resources {
            devices: Some(rules),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            condo_cgroups::devices::attached_programs(u).unwrap().len(),
            1
        );
    }
}

#[test]
fn bpf_device_program_on_the_unified_hierarchy() {
    if !usable() {
        return;
    }
    // On a hybrid host the eBPF filter still works on the unified hierarchy's cgroup.
    let t = TestCgroup::new("bpf");
    let Some(u) = t.cg.unified_dir() else {
        println!("skipped: no unified hierarchy");
        return;
    };
    let rules = vec![
        DeviceRule {
            allow: true,
            access: Some("rwm".into()),
            ..Default::default()
        },
        DeviceRule {
            allow: false,
            kind: Some("c".into()),
            major: Some(1),
            minor: Some(5),
            access: Some("r".into()),
        },
    ];
    condo_cgroups::devices::apply_bpf(u, &rules).unwrap();
    condo_cgroups::devices::apply_bpf(u, &rules).unwrap();
    assert_eq!(
        condo_cgroups::devices::attached_programs(u).unwrap().len(),
        1
    );
    let mut h = Helper::start_in(&t.cg, "open", &["/dev/null", "/dev/zero"]);
    assert_eq!(h.line().as_deref(), Some("/dev/null ok"));
    assert_eq!(h.line().as_deref(), Some("/dev/zero denied"));
}

#[test]
fn hugetlb_limits_land_where_hugetlb_lives() {
    if !usable() {
        return;
    }
    if !condo_cgroups::resources::HostFacts::current()
        .hugepage_sizes
        .iter()
        .any(|s| s == "2MB")
    {
        println!("skipped: no 2MB huge pages");
        return;
    }
    let t = TestCgroup::new("huge");
    let r = Resources {
        hugepage_limits: Some(vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 4 << 20,
        }]),
        ..Default::default()
    };
    let offered =
        t.cg.hierarchies()
            .iter()
            .any(|h| h.controllers.iter().any(|c| c == "hugetlb"));
    if !offered {
        // A v1 view without the unified hierarchy has no hugetlb controller at all.
        let e = t.cg.apply(&r).unwrap_err().to_string();
        assert!(e.contains("hugepageLimits"), "{e}");
        return;
    }
    t.cg.apply(&r).unwrap();
    let v1 =
        t.cg.hierarchies()
            .iter()
            .any(|h| h.version == 1 && h.controllers.iter().any(|c| c == "hugetlb"));
    let file = if v1 {
        "hugetlb.2MB.limit_in_bytes"
    } else {
        "hugetlb.2MB.max"
    };
    assert_eq!(read_ctl(&t.cg, "hugetlb", file), (4u64 << 20).to_string());
    assert!(t.cg.stats().unwrap().hugetlb.contains_key("2MB"));
}

#[test]
fn stats_saved_state_mounts_and_remove() {
    if !usable() {
        return;
    }
    let t = TestCgroup::new("stats");
    t.cg.apply(&mem(128 << 20)).unwrap();
    let _h = Helper::start_in(&t.cg, "sleep", &[]);
    let s = t.cg.stats().unwrap();
    let j = serde_json::to_value(&s).unwrap();
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(j.get(k).is_some(), "stats lack {k}: {j}");
    }
    assert!(j["memory"]["usage"]["limit"].as_u64().unwrap() == 128 << 20);
    assert!(j["memory"]["raw"]
        .as_object()
        .is_some_and(|m| !m.is_empty()));
    assert!(s.pids.current >= 1);
    assert_eq!(t.cg.pids().unwrap().len(), 1);
    let saved: SavedCgroup =
        serde_json::from_str(&serde_json::to_string(&t.cg.to_saved()).unwrap()).unwrap();
    let again = condo_cgroups::Cgroup::from_saved(saved);
    assert_eq!(again.pids().unwrap(), t.cg.pids().unwrap());
    let mounts = t.cg.mounts();
    assert_eq!(mounts.len(), t.cg.hierarchies().len());
    match t.cg.mode() {
        Mode::V2 => assert!(mounts[0].fstype == "cgroup2" && mounts[0].subdir.is_empty()),
        Mode::Hybrid => assert!(mounts
            .iter()
            .any(|m| m.fstype == "cgroup2" && m.subdir == "unified")),
        Mode::V1 => assert!(mounts.iter().all(|m| m.fstype == "cgroup")),
    }
    assert!(mounts.iter().all(|m| m.host_path.is_dir()));
    assert_eq!(t.cg.clone_into_fd().is_some(), t.cg.mode() == Mode::V2);
    again.kill_all(libc::SIGKILL).unwrap();
    again.remove().unwrap();
    assert!(!t.any_dir_exists());
    again.remove().expect("removing twice is fine");
}

#[test]
fn nested_cgroups_are_removed_with_their_parent() {
    if !usable() {
        return;
    }
    let t = TestCgroup::new("nested");
    // What a container with its own cgroup manager would make inside its cgroup.
    for h in t.cg.hierarchies() {
        std::fs::create_dir_all(h.dir.join("inner/deeper")).unwrap();
    }
    let inner =
        condo_cgroups::Cgroup::resolve(Some(&format!("{}/inner", t.cg.path())), "inner", false)
            .unwrap();
    assert!(inner.hierarchies().iter().all(|h| h.dir.is_dir()));
    t.cg.remove().unwrap();
    assert!(!t.any_dir_exists());
}

#[test]
fn relative_paths_sit_below_our_own_cgroup() {
    if !usable() {
        return;
    }
    let cg = condo_cgroups::Cgroup::resolve(Some("condo-rel/x"), "x", false).unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for h in cg.hierarchies() {
        assert!(h.dir.ends_with("condo-rel/x"), "{}", h.dir.display());
        if h.version == 2 {
            let base = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            assert_eq!(
                h.dir,
                h.mountpoint
                    .join(base.trim_start_matches('/'))
                    .join("condo-rel/x")
            );
        }
    }
    let e = condo_cgroups::Cgroup::resolve(Some("system.slice:condo:x"), "x", true);
    if !std::path::Path::new("/run/systemd/system").exists() {
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("systemd is not running"));
    }
}
