use super::testutil::{is_child, run_in_child, spawn};
use super::*;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

const X86_64: u32 = 0xc000_003e;
const X86: u32 = 0x4000_0003;

fn sc(names: &[&str], action: &str) -> Syscall {
    Syscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: action.to_string(),
        ..Default::default()
    }
}

fn arg(index: u32, op: &str, value: u64, value_two: u64) -> Arg {
    Arg {
        index,
        value,
        value_two,
        op: op.to_string(),
    }
}

fn profile(default: &str, syscalls: Vec<Syscall>) -> Seccomp {
    Seccomp {
        default_action: default.to_string(),
        syscalls: Some(syscalls),
        ..Default::default()
    }
}

fn err(s: &Seccomp) -> String {
    compile(s).expect_err("must be refused").to_string()
}

/// A classic BPF interpreter for the instructions the generator writes.
fn run(p: &SeccompProgram, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = p.insns[pc];
        pc += 1;
        let k = i.k;
        match i.code {
            0x20 => acc = u32::from_ne_bytes(data[k as usize..k as usize + 4].try_into().unwrap()),
            0x54 => acc &= k,
            0x05 => pc += k as usize,
            0x15 => pc += if acc == k { i.jt } else { i.jf } as usize,
            0x25 => pc += if acc > k { i.jt } else { i.jf } as usize,
            0x35 => pc += if acc >= k { i.jt } else { i.jf } as usize,
            0x45 => pc += if acc & k != 0 { i.jt } else { i.jf } as usize,
            0x06 => return k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

fn nr(name: &str) -> u32 {
    arch::syscall_nr(arch::by_name("SCMP_ARCH_X86_64").unwrap(), name).unwrap()
}

#[test]
fn validation_errors_name_the_field() {
    let mut s = profile("SCMP_ACT_ERRNO", vec![sc(&["read"], "SCMP_ACT_ALLOW"); 4]);
    s.syscalls.as_mut().unwrap()[3].action = "SCMP_ACT_FOO".into();
    assert_eq!(
        err(&s),
        r#"linux.seccomp.syscalls[3].action: "SCMP_ACT_FOO" is not a seccomp action"#
    );

    let s = profile("SCMP_ACT_NOPE", vec![]);
    assert_eq!(
        err(&s),
        r#"linux.seccomp.defaultAction: "SCMP_ACT_NOPE" is not a seccomp action"#
    );

    let mut s = profile("SCMP_ACT_ERRNO", vec![sc(&["read"], "SCMP_ACT_ALLOW")]);
    s.syscalls.as_mut().unwrap()[0].args = Some(vec![
        arg(0, "SCMP_CMP_EQ", 1, 0),
        arg(1, "SCMP_CMP_XX", 1, 0),
    ]);
    assert_eq!(
        err(&s),
        r#"linux.seccomp.syscalls[0].args[1].op: "SCMP_CMP_XX" is not a seccomp operator"#
    );

    s.syscalls.as_mut().unwrap()[0].args = Some(vec![arg(6, "SCMP_CMP_EQ", 1, 0)]);
    assert!(err(&s).starts_with("linux.seccomp.syscalls[0].args[0].index: 6 is not"));

    let mut s = profile("SCMP_ACT_ALLOW", vec![]);
    s.architectures = Some(vec!["SCMP_ARCH_X86".into(), "SCMP_ARCH_VAX".into()]);
    assert_eq!(
        err(&s),
        r#"linux.seccomp.architectures[1]: "SCMP_ARCH_VAX" is not a seccomp architecture"#
    );

    let mut s = profile("SCMP_ACT_ALLOW", vec![]);
    s.flags = Some(vec!["SECCOMP_FILTER_FLAG_BOGUS".into()]);
    assert_eq!(
        err(&s),
        r#"linux.seccomp.flags[0]: "SECCOMP_FILTER_FLAG_BOGUS" is not a seccomp filter flag"#
    );

    let s = profile("SCMP_ACT_ALLOW", vec![sc(&[], "SCMP_ACT_ERRNO")]);
    assert_eq!(
        err(&s),
        "linux.seccomp.syscalls[0].names: must name at least one syscall"
    );

    let s = profile("SCMP_ACT_ALLOW", vec![sc(&["mkdir"], "SCMP_ACT_NOTIFY")]);
    assert_eq!(
        err(&s),
        "linux.seccomp.listenerPath: is required when a rule uses SCMP_ACT_NOTIFY"
    );

    let mut s = profile("SCMP_ACT_ALLOW", vec![sc(&["mkdir"], "SCMP_ACT_NOTIFY")]);
    s.listener_path = Some("run/listener.sock".into());
    assert_eq!(
        err(&s),
        "linux.seccomp.listenerPath: run/listener.sock is not an absolute path"
    );

    let mut s = profile(
        "SCMP_ACT_ALLOW",
        vec![sc(&["mkdir", "write"], "SCMP_ACT_NOTIFY")],
    );
    s.listener_path = Some("/run/l.sock".into());
    assert!(err(&s)
        .starts_with(r#"linux.seccomp.syscalls[0].names[1]: "write" cannot use SCMP_ACT_NOTIFY"#));

    let s = profile("SCMP_ACT_NOTIFY", vec![]);
    assert_eq!(
        err(&s),
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );

    let mut s = profile("SCMP_ACT_ERRNO", vec![sc(&["read"], "SCMP_ACT_ALLOW")]);
    s.syscalls.as_mut().unwrap()[0].errno_ret = Some(5);
    assert_eq!(
        err(&s),
        "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_ALLOW takes no errno"
    );

    let mut s = profile("SCMP_ACT_ERRNO", vec![]);
    s.default_errno_ret = Some(70000);
    assert!(err(&s).starts_with("linux.seccomp.defaultErrnoRet: 70000 is not an errno"));
}

#[test]
fn config_json_round_trips_with_spec_names() {
    let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64"],
        "flags":["SECCOMP_FILTER_FLAG_LOG"],"listenerPath":"/run/l","listenerMetadata":"m",
        "syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]},
        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#;
    let s: Seccomp = serde_json::from_str(json).unwrap();
    assert_eq!(s.default_errno_ret, Some(38));
    assert_eq!(s.syscalls.as_ref().unwrap()[1].errno_ret, Some(42));
    let again: Seccomp = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(s, again);
}

#[test]
fn unknown_names_are_skipped_and_known_lists_are_complete() {
    let s = profile(
        "SCMP_ACT_ERRNO",
        vec![sc(&["no_such_call", "read"], "SCMP_ACT_ALLOW")],
    );
    let p = compile(&s).unwrap();
    assert_eq!(run(&p, nr("read"), X86_64, [0; 6]), RET_ALLOW);
    assert_eq!(known_actions().len(), 9);
    assert_eq!(known_operators().len(), 7);
    assert!(known_archs().contains(&"SCMP_ARCH_X32"));
    for name in known_archs() {
        assert!(arch::by_name(name).is_some(), "{name}");
    }
}

#[test]
fn generated_code_decides_like_the_rules_say() {
    let mut rules = vec![
        sc(&["read", "write", "close"], "SCMP_ACT_ALLOW"),
        sc(&["getppid"], "SCMP_ACT_KILL_PROCESS"),
        sc(&["mkdir"], "SCMP_ACT_ERRNO"),
        sc(&["personality"], "SCMP_ACT_ALLOW"),
        sc(&["personality"], "SCMP_ACT_ALLOW"),
        sc(&["kill"], "SCMP_ACT_ALLOW"),
        sc(&["kill"], "SCMP_ACT_TRAP"),
        sc(&["fcntl"], "SCMP_ACT_ALLOW"),
        sc(&["dup"], "SCMP_ACT_ALLOW"),
        sc(&["dup2"], "SCMP_ACT_ALLOW"),
        sc(&["dup3"], "SCMP_ACT_ALLOW"),
        sc(&["lseek"], "SCMP_ACT_ALLOW"),
        sc(&["pread64"], "SCMP_ACT_ALLOW"),
        sc(&["clone"], "SCMP_ACT_ALLOW"),
        sc(&["socket"], "SCMP_ACT_ALLOW"),
    ];
    rules[2].errno_ret = Some(42);
    rules[3].args = Some(vec![arg(0, "SCMP_CMP_EQ", 8, 0)]);
    rules[4].args = Some(vec![arg(0, "SCMP_CMP_EQ", 0xffff_ffff, 0)]);
    rules[6].args = Some(vec![arg(1, "SCMP_CMP_EQ", 9, 0)]);
    rules[7].args = Some(vec![arg(5, "SCMP_CMP_GT", 0x1_0000_0005, 0)]);
    rules[8].args = Some(vec![arg(1, "SCMP_CMP_LT", 3, 0)]);
    rules[9].args = Some(vec![
        arg(1, "SCMP_CMP_GE", 0x2_0000_0000, 0),
        arg(2, "SCMP_CMP_LE", 7, 0),
    ]);
    rules[10].args = Some(vec![
        arg(1, "SCMP_CMP_EQ", 1000, 0),
        arg(1, "SCMP_CMP_EQ", 77, 0),
    ]);
    rules[11].args = Some(vec![arg(
        3,
        "SCMP_CMP_MASKED_EQ",
        0xff00_0000_0000_00ff,
        0x1200_0000_0000_0034,
    )]);
    rules[12].args = Some(vec![arg(4, "SCMP_CMP_NE", 1, 0)]);
    rules[13].args = Some(vec![arg(0, "SCMP_CMP_MASKED_EQ", 0x7e02_0000, 0)]);
    let mut s = profile("SCMP_ACT_ERRNO", rules);
    s.architectures = Some(vec!["SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()]);
    let p = compile(&s).unwrap();
    let e = |n: u32| RET_ERRNO | n;
    let d = |name: &str, args: [u64; 6]| run(&p, nr(name), X86_64, args);
    assert_eq!(d("read", [0; 6]), RET_ALLOW);
    assert_eq!(d("close", [0; 6]), RET_ALLOW);
    assert_eq!(d("getppid", [0; 6]), RET_KILL_PROCESS);
    assert_eq!(d("mkdir", [0; 6]), e(42));
    assert_eq!(d("open", [0; 6]), e(1));
    assert_eq!(d("personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("personality", [0x1_0000_0008, 0, 0, 0, 0, 0]), e(1));
    assert_eq!(d("personality", [9, 0, 0, 0, 0, 0]), e(1));
    // The stronger action wins whatever the order of the rules.
    assert_eq!(d("kill", [1, 9, 0, 0, 0, 0]), RET_TRAP);
    assert_eq!(d("kill", [1, 15, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("fcntl", [0, 0, 0, 0, 0, 0x1_0000_0006]), RET_ALLOW);
    assert_eq!(d("fcntl", [0, 0, 0, 0, 0, 0x1_0000_0005]), e(1));
    assert_eq!(d("fcntl", [0, 0, 0, 0, 0, 0x2_0000_0000]), RET_ALLOW);
    assert_eq!(d("fcntl", [0, 0, 0, 0, 0, 0x0_ffff_ffff]), e(1));
    assert_eq!(d("dup", [0, 2, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("dup", [0, 3, 0, 0, 0, 0]), e(1));
    assert_eq!(d("dup", [0, 0x1_0000_0000, 0, 0, 0, 0]), e(1));
    assert_eq!(d("dup2", [0, 0x2_0000_0000, 7, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("dup2", [0, 0x3_0000_0000, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("dup2", [0, 0x1_ffff_ffff, 7, 0, 0, 0]), e(1));
    assert_eq!(d("dup2", [0, 0x2_0000_0000, 8, 0, 0, 0]), e(1));
    assert_eq!(d("dup2", [0, 0x2_0000_0000, 0x1_0000_0000, 0, 0, 0]), e(1));
    // Two conditions on one argument are alternatives.
    assert_eq!(d("dup3", [0, 1000, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("dup3", [0, 77, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("dup3", [0, 78, 0, 0, 0, 0]), e(1));
    assert_eq!(d("dup3", [0, 0x1_0000_03e8, 0, 0, 0, 0]), e(1));
    assert_eq!(
        d("lseek", [0, 0, 0, 0x1255_5555_5555_5534, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(d("lseek", [0, 0, 0, 0x1355_5555_5555_5534, 0, 0]), e(1));
    assert_eq!(d("lseek", [0, 0, 0, 0x1255_5555_5555_5535, 0, 0]), e(1));
    assert_eq!(d("pread64", [0, 0, 0, 0, 2, 0]), RET_ALLOW);
    assert_eq!(d("pread64", [0, 0, 0, 0, 0x1_0000_0001, 0]), RET_ALLOW);
    assert_eq!(d("pread64", [0, 0, 0, 0, 1, 0]), e(1));
    assert_eq!(d("clone", [0x11, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(d("clone", [0x1000_0000, 0, 0, 0, 0, 0]), e(1));
    // Beyond the highest call the profile names: ENOSYS. An unlisted arch: killed.
    assert_eq!(run(&p, 460, X86_64, [0; 6]), e(ENOSYS));
    assert_eq!(run(&p, 0, 0xc000_00b7, [0; 6]), RET_KILL_PROCESS);
    // i386 and x32 get their own numbers; i386 compares the low word only.
    assert_eq!(run(&p, 3, X86, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, 359, X86, [0; 6]), RET_ALLOW);
    assert_eq!(
        run(&p, 136, X86, [0xffff_ffff_ffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(run(&p, X32_BIT_FOR_TESTS, X86_64, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, X32_BIT_FOR_TESTS + 83, X86_64, [0; 6]), e(42));
    assert_eq!(run(&p, X32_BIT_FOR_TESTS + 2, X86_64, [0; 6]), e(1));

    let only_native = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![sc(&["mkdir"], "SCMP_ACT_LOG")],
    ))
    .unwrap();
    assert_eq!(
        run(&only_native, X32_BIT_FOR_TESTS, X86_64, [0; 6]),
        RET_KILL_PROCESS
    );
    assert_eq!(run(&only_native, nr("mkdir"), X86_64, [0; 6]), RET_LOG);
    assert_eq!(run(&only_native, 1000, X86_64, [0; 6]), RET_ALLOW);
}

const X32_BIT_FOR_TESTS: u32 = 0x4000_0000;

/// About 300 calls on three arches with a few argument rules, the shape of Docker's profile.
fn docker_like() -> Seccomp {
    let mut names: Vec<String> = (0..335)
        .filter(|n| {
            ![
                56, 101, 139, 153, 154, 155, 156, 159, 163, 167, 168, 169, 172, 175, 176,
            ]
            .contains(n)
        })
        .filter_map(|n| {
            libseccomp::ScmpSyscall::from_raw_syscall(n)
                .get_name_by_arch(libseccomp::ScmpArch::X8664)
                .ok()
        })
        .collect();
    names.extend(["socketcall", "_llseek", "clone3", "mseal", "no_such_call"].map(String::from));
    let mut rules = vec![sc(
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
        "SCMP_ACT_ALLOW",
    )];
    for v in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        let mut r = sc(&["personality"], "SCMP_ACT_ALLOW");
        r.args = Some(vec![arg(0, "SCMP_CMP_EQ", v, 0)]);
        rules.push(r);
    }
    let mut r = sc(&["clone"], "SCMP_ACT_ALLOW");
    r.args = Some(vec![arg(0, "SCMP_CMP_MASKED_EQ", 2_114_060_288, 0)]);
    rules.push(r);
    let mut r = sc(&["clone3"], "SCMP_ACT_ERRNO");
    r.errno_ret = Some(38);
    rules.push(r);
    let mut s = profile("SCMP_ACT_ERRNO", rules);
    s.architectures = Some(vec![
        "SCMP_ARCH_X86_64".into(),
        "SCMP_ARCH_X86".into(),
        "SCMP_ARCH_X32".into(),
    ]);
    s
}

#[test]
fn compile_time_of_a_docker_sized_profile() {
    let s = docker_like();
    let mut best = Duration::MAX;
    let mut len = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let p = compile(&s).unwrap();
        best = best.min(t.elapsed());
        len = p.instruction_count();
    }
    let p = compile(&s).unwrap();
    assert_eq!(run(&p, nr("read"), X86_64, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, nr("clone3"), X86_64, [0; 6]), RET_ERRNO | 38);
    assert_eq!(
        run(&p, nr("clone"), X86_64, [0x11, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&p, nr("clone"), X86_64, [0x1000_0000, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    eprintln!(
        "seccomp: docker-sized profile compiled in {best:?} (best of 20), {len} instructions"
    );
}

#[test]
fn loaded_filter_fails_getppid_and_mkdir_with_errno_42() {
    let status = run_in_child(
        concat!(
            module_path!(),
            "::loaded_filter_fails_getppid_and_mkdir_with_errno_42"
        ),
        || {
            let mut r = sc(&["getppid", "mkdir", "mkdirat"], "SCMP_ACT_ERRNO");
            r.errno_ret = Some(42);
            let p = compile(&profile("SCMP_ACT_ALLOW", vec![r])).unwrap();
            let t = Instant::now();
            if let Err(e) = condo_sys::process::set_no_new_privs()
                .map_err(SeccompError::Load)
                .and_then(|_| p.load())
            {
                eprintln!("{e}");
                return 10;
            }
            eprintln!(
                "seccomp: filter of {} instructions loaded in {:?}",
                p.instruction_count(),
                t.elapsed()
            );
            // glibc's getppid cannot fail, so the raw -42 comes back as the pid.
            let ppid = std::os::unix::process::parent_id();
            if ppid != (-42i32) as u32 {
                eprintln!("getppid gave {ppid}");
                return 11;
            }
            match std::fs::create_dir("/tmp/condo-seccomp-test-never") {
                Err(e) if e.raw_os_error() == Some(42) => 0,
                _ => 12,
            }
        },
    );
    assert!(status.success(), "child: {status}");
}

const LISTENER_ENV: &str = "CONDO_TEST_SECCOMP_LISTENER";

#[test]
fn notify_fd_reaches_the_listener_which_answers() {
    let name = concat!(
        module_path!(),
        "::notify_fd_reaches_the_listener_which_answers"
    );
    if is_child(name) {
        let path = std::env::var(LISTENER_ENV).unwrap_or_default();
        let mut s = profile(
            "SCMP_ACT_ALLOW",
            vec![sc(&["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")],
        );
        s.listener_path = Some(path.clone().into());
        s.listener_metadata = Some("probe".into());
        let p = compile(&s).unwrap();
        assert!(p.has_notify());
        let fd = match condo_sys::process::set_no_new_privs()
            .map_err(SeccompError::Load)
            .and_then(|_| p.load())
        {
            Ok(Some(fd)) => fd,
            other => {
                eprintln!("{other:?}");
                condo_sys::exit_now(10)
            }
        };
        let state = ContainerProcessState::new(
            std::process::id() as i32,
            Some("probe".into()),
            serde_json::json!({"id": "c1"}),
        );
        if let Err(e) = send_to_listener(Path::new(&path), fd.as_fd(), &state) {
            eprintln!("{e}");
            condo_sys::exit_now(11);
        }
        drop(fd);
        let code = match std::fs::create_dir("/tmp/condo-seccomp-notify-never") {
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => 0,
            other => {
                eprintln!("{other:?}");
                12
            }
        };
        condo_sys::exit_now(code);
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut child = spawn(name, &[(LISTENER_ENV, sock.to_str().unwrap())]);
    let pid = child.id() as i32;
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = condo_sys::process::kill(pid, libc::SIGKILL);
    });
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (n, fds) = condo_sys::fdpass::recv_with_fds(conn.as_fd(), &mut buf, 4).unwrap();
    let msg: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(msg["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(msg["pid"], serde_json::json!(pid));
    assert_eq!(msg["metadata"], "probe");
    assert_eq!(msg["state"]["id"], "c1");
    assert_eq!(fds.len(), 1);
    let req = condo_sys::seccomp::notif_recv(fds[0].as_fd()).unwrap();
    assert!(
        req.nr == libc::SYS_mkdir as i32 || req.nr == libc::SYS_mkdirat as i32,
        "nr {}",
        req.nr
    );
    let resp = condo_sys::seccomp::NotifResp {
        id: req.id,
        val: 0,
        error: -libc::ENODATA,
        flags: 0,
    };
    condo_sys::seccomp::notif_send(fds[0].as_fd(), &resp).unwrap();
    let status = child.wait().unwrap();
    drop(watchdog);
    assert!(status.success(), "child: {status}");
}

#[test]
fn docker_sized_filter_loads_and_allows_ordinary_calls() {
    let status = run_in_child(
        concat!(
            module_path!(),
            "::docker_sized_filter_loads_and_allows_ordinary_calls"
        ),
        || {
            let p = compile(&docker_like()).unwrap();
            let nnp = condo_sys::process::set_no_new_privs().map_err(SeccompError::Load);
            let t = Instant::now();
            if let Err(e) = nnp.and_then(|_| p.load()) {
                eprintln!("{e}");
                return 10;
            }
            let n = p.instruction_count();
            eprintln!(
                "seccomp: docker-sized filter ({n} instructions) loaded in {:?}",
                t.elapsed()
            );
            match std::fs::read_to_string("/proc/thread-self/status") {
                Ok(s) if s.contains("Seccomp:\t2") => 0,
                other => {
                    eprintln!("{other:?}");
                    11
                }
            }
        },
    );
    assert!(status.success(), "child: {status}");
}

/// Runs a BPF program given as the kernel's raw bytes.
fn program_of(bytes: &[u8]) -> SeccompProgram {
    let insns = bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    SeccompProgram {
        insns,
        flags: 0,
        notify: false,
    }
}

#[test]
fn decisions_match_libseccomp_on_native_calls() {
    use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
    let ops = [
        ("SCMP_CMP_NE", ScmpCompareOp::NotEqual),
        ("SCMP_CMP_LT", ScmpCompareOp::Less),
        ("SCMP_CMP_LE", ScmpCompareOp::LessOrEqual),
        ("SCMP_CMP_EQ", ScmpCompareOp::Equal),
        ("SCMP_CMP_GE", ScmpCompareOp::GreaterEqual),
        ("SCMP_CMP_GT", ScmpCompareOp::Greater),
    ];
    let values = [
        0u64,
        1,
        7,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0007,
        u64::MAX,
    ];
    let names = [
        "read", "write", "openat", "close", "fstat", "mmap", "ioctl", "kill", "socket",
    ];
    let mut ours = profile(
        "SCMP_ACT_ERRNO",
        vec![sc(&["getpid", "exit_group"], "SCMP_ACT_ALLOW")],
    );
    let mut theirs = ScmpFilterContext::new(ScmpAction::Errno(1)).unwrap();
    for n in ["getpid", "exit_group"] {
        theirs
            .add_rule(ScmpAction::Allow, ScmpSyscall::from_name(n).unwrap())
            .unwrap();
    }
    for (i, name) in names.iter().enumerate() {
        let (op, sop) = ops[i % ops.len()];
        let v = values[(i * 3) % values.len()];
        let mut r = sc(&[name], "SCMP_ACT_ALLOW");
        r.args = Some(vec![arg(1, op, v, 0)]);
        let mut cmp = vec![ScmpArgCompare::new(1, sop, v)];
        if i % 2 == 0 {
            let m = 0xff00_0000_00f0;
            r.args
                .as_mut()
                .unwrap()
                .push(arg(2, "SCMP_CMP_MASKED_EQ", m, 0x1200_0000_0030));
            cmp.push(ScmpArgCompare::new(
                2,
                ScmpCompareOp::MaskedEqual(m),
                0x1200_0000_0030,
            ));
        }
        ours.syscalls.as_mut().unwrap().push(r);
        let call = ScmpSyscall::from_name(name).unwrap();
        theirs
            .add_rule_conditional(ScmpAction::Allow, call, &cmp)
            .unwrap();
    }
    let mine = compile(&ours).unwrap();
    let memfd = rustix::fs::memfd_create("bpf", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    theirs.export_bpf(&memfd).unwrap();
    let bytes = std::fs::read(format!("/proc/self/fd/{}", memfd.as_raw_fd())).unwrap();
    let reference = program_of(&bytes);
    let top = nr("socket").max(nr("exit_group"));
    let mut checked = 0;
    for call in 0..=top {
        for &a1 in &values {
            for a2 in [
                0u64,
                0x1200_0000_0030,
                0x1200_0000_0031,
                0x1300_0000_0030,
                0x1200_abcd_0039,
            ] {
                let args = [0, a1.wrapping_add(call as u64 % 2), a2, 0, 0, 0];
                let want = run(&reference, call, X86_64, args);
                assert_eq!(
                    run(&mine, call, X86_64, args),
                    want,
                    "nr {call} args {args:x?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}
