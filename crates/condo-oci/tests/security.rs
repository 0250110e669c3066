//! The known runtime escapes, tried for real: the runtime's binary and descriptors must stay
//! out of reach, and no path in the rootfs may lead a mount, mask or device onto the host.

mod common;
use common::*;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private copy of condo-oci, so an attack that works damages only the copy.
fn binary_copy(e: &Env) -> (PathBuf, Vec<u8>) {
    let p = e.tmp.path().join("condo-oci-copy");
    std::fs::copy(bin(), &p).unwrap();
    let content = std::fs::read(&p).unwrap();
    (p, content)
}

fn oci_using(e: &Env, binary: &Path, args: &[&str]) -> (i32, String, String) {
    let n = unique_id("o");
    let out_p = e.tmp.path().join(format!(".{n}.out"));
    let err_p = e.tmp.path().join(format!(".{n}.err"));
    let st = Command::new(binary)
        .arg("--root")
        .arg(&e.root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap())
        .status()
        .unwrap();
    (
        st.code().unwrap_or(-1),
        std::fs::read_to_string(&out_p).unwrap(),
        std::fs::read_to_string(&err_p).unwrap(),
    )
}

/// Every entry of a directory tree, with its mode and size, to prove it did not change.
fn snapshot(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let md = std::fs::symlink_metadata(&d).unwrap();
        out.push(format!(
            "{} {:o} {} {}:{}",
            d.display(),
            md.mode(),
            md.size(),
            md.uid(),
            md.gid()
        ));
        if md.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            stack.extend(names);
        } else if md.is_file() {
            out.push(std::fs::read_to_string(&d).unwrap_or_default());
        }
    }
    out.sort();
    out
}

/// A host directory with a marker file and a marker subdirectory, for symlinks to aim at.
fn host_target(e: &Env, name: &str) -> PathBuf {
    let d = e.tmp.path().join(name);
    std::fs::create_dir_all(d.join("maskme")).unwrap();
    std::fs::write(d.join("marker"), "host secret").unwrap();
    std::fs::write(d.join("maskfile"), "host file").unwrap();
    d
}

fn relative_to_root(target: &Path) -> String {
    format!("../../../../../../../../../../..{}", target.display())
}

#[test]
fn created_init_binary_is_unreachable_from_exec() {
    let e = Env::new();
    let (copy, before) = binary_copy(&e);
    let b = e.sh_bundle("sleep 100", |_| {});
    let id = unique_id("cve5736");
    let (code, _, err) = oci_using(&e, &copy, &["create", "--bundle", b.path(), &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(e.status(&id), "created");
    // The init still runs the runtime's image: every way to it must be closed.
    let probe = "cat /proc/1/exe > /dev/null 2>&1; echo read=$?; \
                 (exec 3>>/proc/1/exe) 2>/dev/null; echo write=$?; \
                 n=0; for f in /proc/1/fd/*; do readlink $f > /dev/null 2>&1 && n=$((n+1)); done; echo fdlinks=$n; \
                 cat /proc/1/fd/0 > /dev/null 2>&1 </dev/null; echo fd0=$?; \
                 ls /proc/1/cwd/ > /dev/null 2>&1; echo cwd=$?; \
                 cat /proc/1/environ > /dev/null 2>&1; echo environ=$?; \
                 cat /proc/1/maps > /dev/null 2>&1; echo maps=$?; \
                 cat /proc/1/mem > /dev/null 2>&1; echo mem=$?";
    let (code, out, err) = oci_using(&e, &copy, &["exec", &id, "sh", "-c", probe]);
    assert_eq!(code, 0, "{err}");
    // The names of its descriptors can be listed (as for runc), but none can be followed.
    assert_eq!(kv(&out).remove("fdlinks").as_deref(), Some("0"), "{out}");
    for (k, v) in kv(&out).into_iter().filter(|(k, _)| k != "fdlinks") {
        assert_ne!(v, "0", "{k} of the created init is reachable: {out}");
    }
    // Even with ptrace and file capabilities, the binary cannot be opened for writing.
    let (code, out, err) = oci_using(
        &e,
        &copy,
        &[
            "exec",
            "--cap",
            "CAP_SYS_PTRACE",
            "--cap",
            "CAP_DAC_OVERRIDE",
            &id,
            "sh",
            "-c",
            "(exec 3>>/proc/1/exe) 2>/dev/null; echo write=$?",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_ne!(kv(&out)["write"], "0", "{out}");
    let (code, _, err) = oci_using(&e, &copy, &["delete", "-f", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "the runtime binary changed"
    );
    assert_nothing_left(&e, &id, &b.dir);
}

#[test]
fn shebang_to_proc_self_exe_does_not_reach_the_runtime_binary() {
    // CVE-2019-5736 as published: a program in the image whose interpreter is
    // /proc/self/exe makes `exec` run the runtime's own binary inside the container; the
    // container then holds it open and writes it once it exits.
    let e = Env::new();
    let (copy, before) = binary_copy(&e);
    let b = e.sh_bundle("sleep 100", |b| {
        std::fs::write(
            b.rootfs().join("bin/evil"),
            "#!/proc/self/exe --log=/fifo\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            b.rootfs().join("bin/evil"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    });
    add_applets(&b.rootfs(), &["mkfifo"]);
    let id = unique_id("shebang");
    let (code, _, err) = oci_using(&e, &copy, &["run", "-d", "--bundle", b.path(), &id]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = oci_using(&e, &copy, &["exec", &id, "mkfifo", "/fifo"]);
    assert_eq!(code, 0, "{err}");
    // The runtime in the container would block opening its log, the fifo.
    let _ = oci_using(&e, &copy, &["exec", "-d", &id, "/bin/evil"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let attack = "for p in /proc/[0-9]*; do grep -q fifo $p/cmdline 2>/dev/null && P=${p#/proc/}; done; echo victim=$P; \
                  if [ -n \"$P\" ]; then exec 3</proc/$P/exe && echo held=yes; cat /fifo > /dev/null & sleep 0.5; \
                  (exec 4>>/proc/self/fd/3) 2>/dev/null && echo opened_for_write=yes; fi; echo done=1";
    let (code, out, err) = oci_using(&e, &copy, &["exec", &id, "sh", "-c", attack]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("opened_for_write=yes"),
        "the runtime binary was opened for writing from the container: {out}"
    );
    let (code, _, err) = oci_using(&e, &copy, &["delete", "-f", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "the runtime binary changed"
    );
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    let e = Env::new();
    let f3 = e.tmp.path().join("three");
    let f4 = e.tmp.path().join("four");
    std::fs::write(&f3, "three").unwrap();
    std::fs::write(&f4, "four").unwrap();
    let leak = host_target(&e, "leaked");
    let b = e.sh_bundle("sleep 100", |_| {});
    let id = unique_id("fds");
    let redirs = format!(
        "3<{} 4<{} 5<{} 7<{}",
        f3.display(),
        f4.display(),
        leak.display(),
        leak.display()
    );
    let (code, _, err) = oci_with_fds(
        &e,
        &redirs,
        &[
            "run",
            "-d",
            "--preserve-fds",
            "2",
            "--bundle",
            b.path(),
            &id,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = oci_with_fds(
        &e,
        &redirs,
        &["exec", &id, "sh", "-c", "ls -l /proc/1/fd > /tmp/links; \
           echo init=$(ls /proc/1/fd | sort -n | xargs); echo fd3=$(cat /proc/1/fd/3); echo fd4=$(cat /proc/1/fd/4); \
           echo links=$(grep -c -e leaked -e socket: -e pipe: -e state /tmp/links)"],
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["init"], "0 1 2 3 4", "{out}");
    assert_eq!(v["fd3"], "three");
    assert_eq!(v["fd4"], "four");
    assert_eq!(v["links"], "0", "{out}");
    // An exec'd `ls` sees its stdio and the directory it lists, nothing inherited...
    let (code, out, err) = oci_with_fds(&e, &redirs, &["exec", &id, "ls", "/proc/self/fd"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{out}"
    );
    let (_, out, _) = oci_with_fds(&e, &redirs, &["exec", &id, "ls", "-l", "/proc/self/fd"]);
    assert!(
        !out.contains("leaked") && !out.contains("socket:") && !out.contains("three"),
        "{out}"
    );
    // ...and with --preserve-fds exactly the ones asked for.
    let (code, out, err) = oci_with_fds(
        &e,
        &redirs,
        &[
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "ls",
            "-l",
            "/proc/self/fd",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let fds: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with('l'))
        .filter_map(|l| l.split(" -> ").next()?.split_whitespace().last())
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4"], "{out}");
    assert!(out.contains(&format!("3 -> {}", f3.display())), "{out}");
    assert!(!out.contains("leaked") && !out.contains("four"), "{out}");
    assert!(e.oci(&["delete", "-f", &id]).status.success());
    assert_nothing_left(&e, &id, &b.dir);
}

#[test]
fn cwd_cannot_leave_the_rootfs() {
    let e = Env::new();
    let host = host_target(&e, "hostcwd");
    let before = snapshot(&host);
    // A leaked directory descriptor named through /proc/self/fd (CVE-2024-21626).
    for n in 3..10 {
        let b = e.sh_bundle("pwd; cat marker 2>/dev/null; ls", |b| {
            b.spec["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        });
        let id = unique_id("cwdfd");
        let redirs = format!("5<{} 6<{}", host.display(), host.display());
        let (code, out, err) = oci_with_fds(&e, &redirs, &["run", "--bundle", b.path(), &id]);
        assert!(
            !out.contains("host secret"),
            "cwd /proc/self/fd/{n} reached the host: {out}"
        );
        if code != 0 {
            assert!(err.contains("process.cwd"), "{err}");
        }
        assert_nothing_left(&e, &id, &b.dir);
    }
    // A cwd through symlinks that point outside stays inside.
    for link in [host.display().to_string(), relative_to_root(&host)] {
        let b = e.sh_bundle("pwd; cat marker 2>/dev/null; touch created_here; ls", |b| {
            std::os::unix::fs::symlink(&link, b.rootfs().join("escape")).unwrap();
            b.spec["process"]["cwd"] = json!("/escape/deeper");
        });
        let id = unique_id("cwdlink");
        let (code, out, err) = e.run(&b, &id);
        assert!(
            !out.contains("host secret"),
            "cwd through {link} reached the host: {out}"
        );
        if code == 0 {
            // It was made inside the rootfs.
            let inside = b
                .rootfs()
                .join(host.strip_prefix("/").unwrap())
                .join("deeper/created_here");
            assert!(inside.exists(), "{out} {err}");
        }
        assert_nothing_left(&e, &id, &b.dir);
    }
    assert_eq!(snapshot(&host), before, "the host directory changed");
}

#[test]
fn symlinks_cannot_aim_mounts_masks_or_devices_at_the_host() {
    let e = Env::new();
    let host = host_target(&e, "hostfs");
    let before = snapshot(&host);
    for link in [host.display().to_string(), relative_to_root(&host)] {
        let b = e.sh_bundle("cat /esc/marker 2>/dev/null; echo; ls /esc /esc/maskme; cat /esc/maskfile 2>/dev/null; echo done", |b| {
            std::os::unix::fs::symlink(&link, b.rootfs().join("esc")).unwrap();
            let m = b.spec["mounts"].as_array_mut().unwrap();
            m.push(json!({"destination": "/esc/mnt", "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/esc/bound", "type": "bind", "source": "/etc", "options": ["bind", "ro"]}));
            m.push(json!({"destination": "/esc/marker", "type": "tmpfs", "source": "tmpfs"}));
            b.spec["linux"]["maskedPaths"] = json!(["/esc/maskme", "/esc/maskfile", "/esc"]);
            b.spec["linux"]["readonlyPaths"] = json!(["/esc/maskme", "/esc"]);
            b.spec["linux"]["devices"] = json!([{"type": "c", "path": "/esc/null2", "major": 1, "minor": 3, "fileMode": 0o666}]);
        });
        let id = unique_id("symlink");
        let (_code, out, _err) = e.run(&b, &id);
        assert!(
            !out.contains("host secret") && !out.contains("host file"),
            "a mount through {link} showed the host: {out}"
        );
        assert_eq!(
            snapshot(&host),
            before,
            "the host directory changed through {link}"
        );
        assert_nothing_left(&e, &id, &b.dir);
    }
}

#[test]
fn dev_as_a_symlink_to_the_host() {
    let e = Env::new();
    let host = host_target(&e, "hostdev");
    // What a terminal bind would pick if it followed /dev on the host.
    std::fs::create_dir_all(host.join("pts")).unwrap();
    std::fs::write(host.join("pts/0"), "host terminal").unwrap();
    std::fs::write(host.join("console"), "host console").unwrap();
    let before = snapshot(&host);
    for link in [host.display().to_string(), relative_to_root(&host)] {
        let sock = e.tmp.path().join(format!("{}.sock", unique_id("cs")));
        let rx = console_listener(&sock);
        let b = e.sh_bundle("echo console=$(stat -c %F /dev/console); echo pts0=$(stat -c %F /dev/pts/0); echo tty=$(tty); ls /dev; echo done=1", |b| {
            std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
            std::os::unix::fs::symlink(&link, b.rootfs().join("dev")).unwrap();
            b.spec["process"]["terminal"] = json!(true);
        });
        let id = unique_id("devlink");
        let c = e.oci(&[
            "create",
            "--bundle",
            b.path(),
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
        ]);
        assert!(c.status.success(), "/dev -> {link}: {}", text(&c.stderr));
        {
            let master = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("no terminal");
            let reader = std::thread::spawn(move || read_all(master));
            assert!(e.oci(&["start", &id]).status.success());
            e.wait_status(&id, "stopped", 10);
            let out = reader.join().unwrap();
            assert!(e.oci(&["delete", &id]).status.success());
            let v = kv(&out.replace('\r', ""));
            assert_eq!(
                v["console"], "character special file",
                "/dev through {link}: {out}"
            );
            assert_eq!(
                v["pts0"], "character special file",
                "/dev through {link}: {out}"
            );
            assert_eq!(v["done"], "1", "{out}");
        }
        assert_eq!(
            snapshot(&host),
            before,
            "the host directory changed through /dev -> {link}"
        );
        assert_nothing_left(&e, &id, &b.dir);
    }
}
