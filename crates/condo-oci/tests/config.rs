//! Every config.json feature, checked from inside the container by small busybox probes.

mod common;
use common::*;

use serde_json::{json, Value};

fn mask(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, b| m | 1 << b))
}

fn caps(names: &[&str]) -> Value {
    json!(names.iter().map(|n| format!("CAP_{n}")).collect::<Vec<_>>())
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn user_groups_and_umask() {
    let e = Env::new();
    let (code, out, err) = e.sh(
        "echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo umask=$(umask); \
         touch /tmp/f; echo mode=$(stat -c %a /tmp/f)",
        |b| {
            b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
            b.spec["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}));
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["uid"], "1000");
    assert_eq!(v["gid"], "1001");
    assert_eq!(v["groups"], "1001 10 20");
    assert_eq!(v["umask"], "0027");
    assert_eq!(v["mode"], "640");
}

#[test]
fn env_and_missing_cwd() {
    let e = Env::new();
    let (code, out, err) = e.sh(
        "echo foo=$FOO; echo home=$HOME; echo cwd=$(pwd); echo path=$PATH",
        |b| {
            b.spec["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar baz"]);
            b.spec["process"]["cwd"] = json!("/work/deep/er");
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["foo"], "bar baz");
    assert_eq!(v["home"], "/root");
    assert_eq!(v["cwd"], "/work/deep/er");
    assert_eq!(v["path"], "/bin:/sbin");
}

#[test]
fn all_five_capability_sets() {
    let e = Env::new();
    let probe = "for s in CapInh CapPrm CapEff CapBnd CapAmb; do echo $s=$(grep $s /proc/self/status | cut -f2); done";
    let sets = |b: &mut Bundle| {
        b.spec["process"]["capabilities"] = json!({
            "bounding": caps(&["CHOWN", "KILL", "NET_BIND_SERVICE", "SETUID", "SETGID"]),
            "permitted": caps(&["CHOWN", "KILL", "NET_BIND_SERVICE"]),
            "effective": caps(&["CHOWN", "KILL"]),
            "inheritable": caps(&["CHOWN", "NET_BIND_SERVICE"]),
            "ambient": caps(&["CHOWN"]),
        });
    };
    // As root the kernel would give bounding ∪ inheritable to the program, but no_new_privs
    // (on in the default config) keeps it within the permitted set the runtime gave.
    let (code, out, err) = e.sh(probe, sets);
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["CapBnd"], mask(&[0, 5, 10, 7, 6]), "{out}");
    assert_eq!(v["CapInh"], mask(&[0, 10]), "{out}");
    assert_eq!(v["CapAmb"], mask(&[0]), "{out}");
    assert_eq!(v["CapPrm"], mask(&[0, 5, 10]), "{out}");
    assert_eq!(v["CapEff"], mask(&[0, 5, 10]), "{out}");
    // Not root: only the ambient set survives execve into permitted and effective.
    let (code, out, err) = e.sh(probe, |b| {
        sets(b);
        b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["CapBnd"], mask(&[0, 5, 10, 7, 6]), "{out}");
    assert_eq!(v["CapInh"], mask(&[0, 10]), "{out}");
    assert_eq!(v["CapAmb"], mask(&[0]), "{out}");
    assert_eq!(v["CapPrm"], mask(&[0]), "{out}");
    assert_eq!(v["CapEff"], mask(&[0]), "{out}");
    // Without capabilities the process has none at all.
    let (code, out, err) = e.sh(probe, |b| {
        b.spec["process"]["capabilities"] = json!({});
    });
    assert_eq!(code, 0, "{err}");
    for (k, v) in kv(&out) {
        assert_eq!(v, mask(&[]), "{k}: {out}");
    }
}

#[test]
fn rlimits_no_new_privileges_and_oom_score() {
    let e = Env::new();
    let script = "grep -E 'Max open files|Max processes|Max core' /proc/self/limits; \
                  echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2); echo oom=$(cat /proc/self/oom_score_adj)";
    let (code, out, err) = e.sh(script, |b| {
        b.spec["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
            {"type": "RLIMIT_NPROC", "soft": 777, "hard": 888},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
        b.spec["process"]["noNewPrivileges"] = json!(true);
        b.spec["process"]["oomScoreAdj"] = json!(432);
    });
    assert_eq!(code, 0, "{err}");
    let lim = |name: &str| -> Vec<String> {
        let l = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        l[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(lim("Max open files"), ["123", "456"]);
    assert_eq!(lim("Max processes"), ["777", "888"]);
    assert_eq!(lim("Max core file size"), ["0", "0"]);
    let v = kv(&out);
    assert_eq!(v["nnp"], "1");
    assert_eq!(v["oom"], "432");
    let (code, out, err) = e.sh(script, |b| {
        b.spec["process"]["noNewPrivileges"] = json!(false);
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(kv(&out)["nnp"], "0");
}

#[test]
fn scheduler_io_priority_and_personality() {
    let e = Env::new();
    let (code, out, err) = e.sh(
        "echo stat=$(cut -d' ' -f19,41 /proc/self/stat); echo io=$(ionice -p $$); echo arch=$(uname -m)",
        |b| {
            b.spec["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
            b.spec["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
            b.spec["linux"]["personality"] = json!({"domain": "LINUX32"});
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    // nice 7, policy 3 = SCHED_BATCH
    assert_eq!(v["stat"], "7 3", "{out}");
    assert_eq!(v["io"], "best-effort: prio 6", "{out}");
    assert_eq!(v["arch"], "i686", "{out}");
}

#[test]
fn hostname_domainname_and_readonly_root() {
    let e = Env::new();
    let (code, out, err) = e.sh(
        "echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname); \
         touch /newfile 2>/dev/null; echo touch=$?; echo rootopts=$(awk '$5==\"/\" {print $6}' /proc/self/mountinfo); \
         touch /tmp/ok; echo tmp=$?",
        |b| {
            b.spec["hostname"] = json!("probe-host");
            b.spec["domainname"] = json!("probe.domain");
            b.spec["root"]["readonly"] = json!(true);
            b.spec["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["host"], "probe-host");
    assert_eq!(v["domain"], "probe.domain");
    assert_ne!(v["touch"], "0", "{out}");
    assert!(v["rootopts"].split(',').any(|o| o == "ro"), "{out}");
    assert_eq!(v["tmp"], "0", "{out}");
}

/// A tmpfs mounted on the host, unmounted when dropped.
struct HostMount(std::path::PathBuf);

impl HostMount {
    fn tmpfs(at: &std::path::Path) -> HostMount {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "condo-test"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success());
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn mounts_of_every_kind() {
    let e = Env::new();
    let src = e.tmp.path().join("hsrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "hello").unwrap();
    let _sub = HostMount::tmpfs(&src.join("sub"));
    std::fs::write(src.join("sub/inner"), "deep").unwrap();
    let s = src.to_str().unwrap();
    let script = r#"
        mi() { awk -v p="$1" '$5==p {for(i=7;$i!="-";i++) o=o" "$i; print $6" "$(i+1)" "$(i+3)o; exit}' /proc/self/mountinfo; }
        for p in /mnt/ro /mnt/rb /mnt/b /mnt/tmp /mnt/shared /mnt/priv /proc /sys /dev/pts /dev/mqueue /dev/shm /dev; do echo "mnt:$p=$(mi $p)"; done
        echo ro_read=$(cat /mnt/ro/f)
        touch /mnt/ro/x 2>/dev/null; echo ro_write=$?
        echo rb_inner=$(cat /mnt/rb/sub/inner 2>&1)
        echo b_inner=$(ls /mnt/b/sub | wc -l)
        echo tmp_mode=$(stat -c %a /mnt/tmp)
        touch /mnt/rw_ok/x; echo rw_write=$?
    "#;
    let (code, out, err) = e.sh(script, |b| {
        let m = b.spec["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/mnt/ro", "type": "bind", "source": s, "options": ["bind", "ro"]}));
        m.push(json!({"destination": "/mnt/rb", "type": "bind", "source": s, "options": ["rbind", "ro", "nosuid"]}));
        m.push(json!({"destination": "/mnt/b", "source": s, "options": ["bind"]}));
        m.push(json!({"destination": "/mnt/rw_ok", "type": "tmpfs", "source": "tmpfs"}));
        m.push(json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1770", "noexec"]}));
        m.push(json!({"destination": "/mnt/shared", "type": "bind", "source": s, "options": ["rbind", "rshared"]}));
        m.push(json!({"destination": "/mnt/priv", "type": "bind", "source": s, "options": ["rbind", "rprivate"]}));
    });
    assert_eq!(code, 0, "{err}\n{out}");
    let v = kv(&out);
    let mnt = |p: &str| v.get(&format!("mnt:{p}")).cloned().unwrap_or_default();
    let has_opt = |p: &str, o: &str| mnt(p).split([' ', ',']).any(|x| x == o);
    assert_eq!(v["ro_read"], "hello");
    assert_ne!(v["ro_write"], "0");
    assert!(has_opt("/mnt/ro", "ro"), "{out}");
    assert!(
        has_opt("/mnt/rb", "ro") && has_opt("/mnt/rb", "nosuid"),
        "{}",
        mnt("/mnt/rb")
    );
    assert_eq!(v["rb_inner"], "deep", "rbind is recursive");
    assert_eq!(v["b_inner"], "0", "bind is not recursive");
    assert_eq!(v["tmp_mode"], "1770");
    assert!(
        mnt("/mnt/tmp").contains("tmpfs")
            && mnt("/mnt/tmp").contains("size=1024k")
            && has_opt("/mnt/tmp", "noexec"),
        "{}",
        mnt("/mnt/tmp")
    );
    assert_eq!(v["rw_write"], "0");
    assert!(
        mnt("/mnt/shared").contains("shared:"),
        "{}",
        mnt("/mnt/shared")
    );
    assert!(
        !mnt("/mnt/priv").contains("shared:") && !mnt("/mnt/priv").contains("master:"),
        "{}",
        mnt("/mnt/priv")
    );
    assert!(mnt("/proc").contains(" proc"), "{}", mnt("/proc"));
    assert!(
        mnt("/sys").contains(" sysfs") && has_opt("/sys", "ro"),
        "{}",
        mnt("/sys")
    );
    assert!(
        mnt("/dev/pts").contains(" devpts") && mnt("/dev/pts").contains("ptmxmode=666"),
        "{}",
        mnt("/dev/pts")
    );
    assert!(
        mnt("/dev/mqueue").contains(" mqueue"),
        "{}",
        mnt("/dev/mqueue")
    );
    assert!(
        mnt("/dev/shm").contains(" tmpfs") && has_opt("/dev/shm", "nodev"),
        "{}",
        mnt("/dev/shm")
    );
    assert!(mnt("/dev").contains(" tmpfs"), "{}", mnt("/dev"));
    // The propagation of the container's shared mount must not reach the host.
    assert!(mounts_mentioning("condo-oci-test")
        .iter()
        .all(|l| !l.contains("/mnt/")));
}

#[test]
fn bind_propagation_and_rootfs_propagation() {
    let e = Env::new();
    // A shared mount on the host; the container gets an rslave recursive bind of it.
    let shared = e.tmp.path().join("shared");
    let _m = HostMount::tmpfs(&shared);
    assert!(std::process::Command::new("mount")
        .arg("--make-shared")
        .arg(&shared)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(shared.join("sub")).unwrap();
    let s = shared.to_str().unwrap();
    let b = e.sh_bundle(
        "awk '$5==\"/\" {print \"root=\" $7}' /proc/self/mountinfo; \
         while ! test -e /mnt/prop/sub/marker; do sleep 0.05; done; echo seen=yes; \
         mount -t tmpfs inner /mnt/prop/sub 2>/dev/null; echo inner_mount=$?",
        |b| {
            b.spec["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/prop", "type": "bind", "source": s, "options": ["rbind", "rslave"]}));
            b.spec["linux"]["rootfsPropagation"] = json!("rshared");
            b.spec["process"]["capabilities"]["bounding"] = caps(&["SYS_ADMIN"]);
            b.spec["process"]["capabilities"]["effective"] = caps(&["SYS_ADMIN"]);
            b.spec["process"]["capabilities"]["permitted"] = caps(&["SYS_ADMIN"]);
        },
    );
    let id = unique_id("prop");
    let e2 = &e;
    let (code, out, err) = std::thread::scope(|sc| {
        let h = sc.spawn(|| e2.run(&b, &id));
        std::thread::sleep(std::time::Duration::from_millis(300));
        // A mount made on the host after the container started reaches it.
        let _sub = HostMount::tmpfs(&shared.join("sub"));
        std::fs::write(shared.join("sub/marker"), "").unwrap();
        let r = h.join().unwrap();
        drop(_sub);
        r
    });
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert!(
        v["root"].starts_with("shared:"),
        "rootfsPropagation rshared: {out}"
    );
    assert_eq!(v["seen"], "yes");
    // A slave's own mounts do not travel back to the host.
    assert!(mounts_mentioning("inner").is_empty());
    assert_nothing_left(&e, &id, &b.dir);
}

#[test]
fn cgroup_mount_is_the_containers_own_and_read_only() {
    let e = Env::new();
    let (code, out, err) = e.sh(
        "echo max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); \
         echo self=$(grep -E ':pids:|^0::' /proc/self/cgroup | head -1 | cut -d: -f3); \
         echo procs=$(cat /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/cgroup.procs); \
         mkdir /sys/fs/cgroup/pids/sub 2>/dev/null || mkdir /sys/fs/cgroup/sub 2>/dev/null; echo mkdir=$?; \
         echo opts=$(awk '$5==\"/sys/fs/cgroup\" {print $6}' /proc/self/mountinfo)",
        |b| {
            b.spec["linux"]["resources"]["pids"] = json!({"limit": 42});
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["max"], "42", "{out}");
    assert_eq!(
        v["self"], "/",
        "the cgroup namespace is rooted at the container's cgroup: {out}"
    );
    assert!(!v["procs"].is_empty(), "{out}");
    assert_ne!(v["mkdir"], "0", "{out}");
    assert!(v["opts"].split(',').any(|o| o == "ro"), "{out}");
}

#[test]
fn idmapped_bind_mount() {
    let e = Env::new();
    let src = e.tmp.path().join("owned");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(1000), Some(1000)).unwrap();
    let s = src.to_str().unwrap();
    let (code, out, err) = e.sh(
        "echo owner=$(stat -c %u:%g /data/f); echo plain=$(stat -c %u:%g /plain/f)",
        |b| {
            let m = b.spec["mounts"].as_array_mut().unwrap();
            m.push(json!({
                "destination": "/data", "type": "bind", "source": s, "options": ["bind"],
                "uidMappings": [{"containerID": 1000, "hostID": 2000, "size": 10}],
                "gidMappings": [{"containerID": 1000, "hostID": 3000, "size": 10}],
            }));
            m.push(
                json!({"destination": "/plain", "type": "bind", "source": s, "options": ["bind"]}),
            );
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["plain"], "1000:1000");
    // The on-disk owner 1000 shows through the mount's mapping as 2000 (group 3000).
    assert_eq!(v["owner"], "2000:3000", "{out}");
    // The host's view is unchanged.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(src.join("f")).unwrap().uid(), 1000);
}

#[test]
fn new_namespaces_of_every_kind() {
    let e = Env::new();
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (code, out, err) = e.sh(
        "for n in pid net mnt ipc uts cgroup time; do echo $n=$(readlink /proc/self/ns/$n); done; \
         echo me=$$; echo uptime=$(cut -d' ' -f1 /proc/uptime); echo ifaces=$(ls /sys/class/net | xargs)",
        |b| {
            b.spec["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
            b.spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": 5_000_000, "nanosecs": 0}, "monotonic": {"secs": 1000}});
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    for n in ["pid", "net", "mnt", "ipc", "uts", "cgroup", "time"] {
        assert!(v[n].starts_with(&format!("{n}:[")), "{n}: {out}");
        assert_ne!(v[n], host_ns(n), "{n} is the host's");
    }
    assert_eq!(v["me"], "1");
    let up: f64 = v["uptime"].parse().unwrap();
    assert!(
        up > host_uptime + 4_999_000.0,
        "uptime {up} vs host {host_uptime}"
    );
    assert_eq!(v["ifaces"], "lo", "{out}");
}

#[test]
fn user_namespace_with_mappings() {
    let e = Env::new();
    use std::os::unix::fs::PermissionsExt;
    // The mapped root is "other" to the host's files: let it through the temp dir.
    std::fs::set_permissions(e.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = e.sh_bundle("echo uid_map=$(cat /proc/self/uid_map | xargs); echo gid_map=$(cat /proc/self/gid_map | xargs); echo id=$(id -u):$(id -g); sleep 100", |b| {
        b.spec["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        b.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    });
    let id = unique_id("userns");
    let out_p = e.tmp.path().join("userns.out");
    // Files, not pipes: the detached container keeps its stdio.
    let o = std::process::Command::new(bin())
        .arg("--root")
        .arg(&e.root)
        .args(["run", "-d", "--bundle", b.path(), &id])
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(e.tmp.path().join("userns.err")).unwrap())
        .status()
        .unwrap();
    assert!(
        o.success(),
        "{}",
        std::fs::read_to_string(e.tmp.path().join("userns.err")).unwrap()
    );
    let pid = e.pid(&id);
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&out_p).unwrap().contains("id=") {
        assert!(t.elapsed().as_secs() < 10);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(e.oci(&["delete", "-f", &id]).status.success());
    let v = kv(&std::fs::read_to_string(&out_p).unwrap());
    assert_eq!(v["uid_map"], "0 200000 65536");
    assert_eq!(v["gid_map"], "0 300000 65536");
    assert_eq!(v["id"], "0:0");
    // Root inside is the mapped id outside.
    assert!(
        status_field(&status, "Uid").starts_with("200000\t"),
        "{status}"
    );
    assert!(
        status_field(&status, "Gid").starts_with("300000\t"),
        "{status}"
    );
    assert_nothing_left(&e, &id, &b.dir);
}

#[test]
fn namespaces_joined_by_path() {
    let e = Env::new();
    let a = e.sh_bundle("sleep 100", |b| {
        b.spec["hostname"] = json!("joined-host");
    });
    let ida = unique_id("nsa");
    let o = e.oci(&["run", "-d", "--bundle", a.path(), &ida]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let pid = e.pid(&ida);
    let (code, out, err) = e.sh("echo host=$(hostname); for n in net ipc uts pid; do echo $n=$(readlink /proc/self/ns/$n); done", |b| {
        b.spec.as_object_mut().unwrap().remove("hostname");
        let ns = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            let t = n["type"].as_str().unwrap().to_string();
            let proc_name = match t.as_str() {
                "network" => "net",
                "ipc" => "ipc",
                "uts" => "uts",
                _ => continue,
            };
            n["path"] = json!(format!("/proc/{pid}/ns/{proc_name}"));
        }
    });
    let theirs = |n: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let (tnet, tipc, tuts, tpid) = (theirs("net"), theirs("ipc"), theirs("uts"), theirs("pid"));
    assert!(e.oci(&["delete", "-f", &ida]).status.success());
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["host"], "joined-host");
    assert_eq!(v["net"], tnet);
    assert_eq!(v["ipc"], tipc);
    assert_eq!(v["uts"], tuts);
    assert_ne!(v["pid"], tpid, "pid namespace was not asked to be shared");
}

#[test]
fn devices_and_dev_symlinks() {
    let e = Env::new();
    let script = "for d in /dev/fuse /dev/loop77 /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; do \
                    echo \"$d=$(stat -c '%F %t:%T %a %u:%g' $d)\"; done; \
                  echo /dev/myfifo=$(stat -c %F /dev/myfifo); \
                  for l in ptmx fd stdin stdout stderr; do echo link_$l=$(readlink /dev/$l); done; \
                  echo pts=$(awk '$5==\"/dev/pts\" {print $9}' /proc/self/mountinfo); \
                  echo null_ok=$(echo hi > /dev/null && echo yes); echo zero=$(head -c 4 /dev/zero | wc -c)";
    let (code, out, err) = e.sh(script, |b| {
        b.spec["linux"]["devices"] = json!([
            {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 0, "gid": 5},
            {"type": "b", "path": "/dev/loop77", "major": 7, "minor": 77, "fileMode": 0o600},
            {"type": "p", "path": "/dev/myfifo"},
        ]);
    });
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(
        v["/dev/fuse"], "character special file a:e5 640 0:5",
        "{out}"
    );
    assert_eq!(v["/dev/loop77"], "block special file 7:4d 600 0:0", "{out}");
    assert_eq!(v["/dev/myfifo"], "fifo", "{out}");
    for (d, n) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        assert_eq!(
            v[&format!("/dev/{d}")],
            format!("character special file {n} 666 0:0"),
            "{out}"
        );
    }
    assert_eq!(v["link_ptmx"], "pts/ptmx");
    assert_eq!(v["link_fd"], "/proc/self/fd");
    assert_eq!(v["link_stdin"], "/proc/self/fd/0");
    assert_eq!(v["link_stdout"], "/proc/self/fd/1");
    assert_eq!(v["link_stderr"], "/proc/self/fd/2");
    assert_eq!(v["pts"], "devpts");
    assert_eq!(v["null_ok"], "yes");
    assert_eq!(v["zero"], "4");
}

#[test]
fn masked_and_readonly_paths_and_sysctl() {
    let e = Env::new();
    // /proc/kcore exists only on kernels built with it; /proc/timer_list is always there.
    let script = "echo kcore=$(wc -c < /proc/kcore 2>/dev/null || echo absent); echo timer_list=$(wc -c < /proc/timer_list); echo keys=$(cat /proc/keys | wc -c); \
                  echo acpi=$(ls /proc/acpi 2>/dev/null | wc -l); \
                  echo 1 > /proc/sys/kernel/domainname 2>/dev/null; echo sys_write=$?; \
                  echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo shmmax=$(cat /proc/sys/kernel/shmmax)";
    let (code, out, err) = e.sh(script, |b| {
        b.spec["linux"]["sysctl"] =
            json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "12345678"});
    });
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    let kcore = if std::path::Path::new("/proc/kcore").exists() {
        "0"
    } else {
        "absent"
    };
    assert_eq!(v["kcore"], kcore, "{out}\n{err}");
    assert!(!std::fs::read_to_string("/proc/timer_list")
        .unwrap()
        .is_empty());
    assert_eq!(v["timer_list"], "0", "{out}");
    assert_eq!(v["keys"], "0");
    assert_eq!(v["acpi"], "0");
    assert_ne!(v["sys_write"], "0");
    assert_eq!(v["fwd"], "1");
    assert_eq!(v["shmmax"], "12345678");
    // The host's value is untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax")
            .unwrap()
            .trim(),
        "12345678"
    );
}

#[test]
fn seccomp_errno_and_argument_filter() {
    let e = Env::new();
    let script = "mkdir /tmp/d 2>&1; echo mkdir=$?; touch /tmp/f; chmod 755 /tmp/f; echo c755=$?; \
                  chmod 777 /tmp/f 2>&1; echo c777=$?; echo mode=$(stat -c %a /tmp/f)";
    let (code, out, err) = e.sh(script, |b| {
        b.spec["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        b.spec["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            ],
        });
    });
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_ne!(v["mkdir"], "0");
    assert!(out.contains("Permission denied"), "{out}");
    assert_eq!(v["c755"], "0", "{out}");
    assert_ne!(v["c777"], "0", "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_eq!(v["mode"], "755");
}

#[test]
fn seccomp_notify_reaches_the_listener() {
    let e = Env::new();
    let sock = e.tmp.path().join("seccomp.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        let (conn, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, fds) = condo_sys::fdpass::recv_with_fds(conn.as_fd(), &mut buf, 4).unwrap();
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap_or_default();
        let _ = tx.send(("state".to_string(), state.to_string()));
        let fd = fds.into_iter().next().expect("no seccomp fd");
        // Pretend every mkdir succeeded without doing anything.
        while let Ok(n) = condo_sys::seccomp::notif_recv(fd.as_fd()) {
            let _ = tx.send(("nr".to_string(), n.nr.to_string()));
            let r = condo_sys::seccomp::NotifResp {
                id: n.id,
                val: 0,
                error: 0,
                flags: 0,
            };
            let _ = condo_sys::seccomp::notif_send(fd.as_fd(), &r);
        }
    });
    let s = sock.to_str().unwrap().to_string();
    let (code, out, err) = e.sh(
        "mkdir /tmp/n; echo made=$?; test -d /tmp/n && echo exists=yes || echo exists=no",
        |b| {
            b.spec["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
            b.spec["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": s,
                "listenerMetadata": "probe-meta",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
            });
        },
    );
    assert_eq!(code, 0, "{err}");
    let v = kv(&out);
    assert_eq!(v["made"], "0", "{out}");
    assert_eq!(
        v["exists"], "no",
        "the listener answered instead of the kernel: {out}"
    );
    let msgs: Vec<(String, String)> = rx.try_iter().collect();
    let state = &msgs
        .iter()
        .find(|(k, _)| k == "state")
        .expect("listener got nothing")
        .1;
    let state: Value = serde_json::from_str(state).unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "probe-meta", "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert!(
        msgs.iter()
            .any(|(k, v)| k == "nr" && (v == "83" || v == "258")),
        "{msgs:?}"
    );
}

#[test]
fn annotations_appear_in_state() {
    let e = Env::new();
    let b = e.sh_bundle("sleep 100", |b| {
        b.spec["annotations"] = json!({"org.condo.test/a": "1", "b": "two words"});
    });
    let id = unique_id("ann");
    assert!(e
        .oci(&["create", "--bundle", b.path(), &id])
        .status
        .success());
    let st: Value = serde_json::from_slice(&e.oci(&["state", &id]).stdout).unwrap();
    assert_eq!(
        st["annotations"],
        json!({"org.condo.test/a": "1", "b": "two words"})
    );
    assert!(e.oci(&["delete", "-f", &id]).status.success());
    assert_nothing_left(&e, &id, &b.dir);
}

/// A hook that saves its stdin and the hostname it sees under `out/NAME.*` and appends
/// NAME to `out/order`.
fn hook(sh: &str, script: &str, name: &str, out: &str) -> Value {
    json!({"path": sh, "args": ["sh", script, name, out], "env": ["PATH=/bin:/usr/bin"]})
}

const HOOK_SCRIPT: &str =
    "cat > $2/$1.json; echo $1 >> $2/order; cat /proc/sys/kernel/hostname > $2/$1.host\n";

#[test]
fn hooks_run_in_order_with_state_and_in_the_right_namespaces() {
    let e = Env::new();
    let out = e.tmp.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    let host_script = e.tmp.path().join("hook.sh");
    std::fs::write(&host_script, HOOK_SCRIPT).unwrap();
    let (o, hs) = (
        out.to_str().unwrap().to_string(),
        host_script.to_str().unwrap().to_string(),
    );
    let b = e.sh_bundle("true", |b| {
        // startContainer runs after pivot_root: its program and output dir are the container's.
        std::fs::write(b.rootfs().join("hook.sh"), HOOK_SCRIPT).unwrap();
        b.spec["hostname"] = json!("hooked");
        b.spec["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/hookout", "type": "bind", "source": o, "options": ["bind"]}),
        );
        b.spec["hooks"] = json!({
            "prestart": [hook("/bin/sh", &hs, "prestart", &o)],
            "createRuntime": [hook("/bin/sh", &hs, "createRuntime", &o)],
            "createContainer": [hook("/bin/sh", &hs, "createContainer", &o)],
            "startContainer": [hook("/bin/sh", "/hook.sh", "startContainer", "/hookout")],
            "poststart": [hook("/bin/sh", &hs, "poststart", &o)],
            "poststop": [hook("/bin/sh", &hs, "poststop", &o)],
        });
    });
    let id = unique_id("hooks");
    let c = e.oci(&["create", "--bundle", b.path(), &id]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    let pid = e.pid(&id);
    let s = e.oci(&["start", &id]);
    assert!(s.status.success(), "{}", text(&s.stderr));
    e.wait_status(&id, "stopped", 10);
    let d = e.oci(&["delete", &id]);
    assert!(d.status.success(), "{}", text(&d.stderr));
    let order = std::fs::read_to_string(out.join("order")).unwrap();
    assert_eq!(
        order.split_whitespace().collect::<Vec<_>>(),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for (name, status, in_container) in [
        ("prestart", "creating", false),
        ("createRuntime", "creating", false),
        ("createContainer", "created", true),
        ("startContainer", "created", true),
        ("poststart", "running", false),
        ("poststop", "stopped", false),
    ] {
        let st: Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("{name}.json"))).unwrap())
                .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(st["id"], id.as_str(), "{name}: {st}");
        assert_eq!(st["status"], status, "{name}: {st}");
        assert_eq!(st["bundle"], b.path(), "{name}: {st}");
        if name != "poststop" {
            assert_eq!(st["pid"], pid, "{name}: {st}");
        }
        let seen = std::fs::read_to_string(out.join(format!("{name}.host"))).unwrap();
        let want = if in_container {
            "hooked\n"
        } else {
            host.as_str()
        };
        assert_eq!(seen, want, "{name} ran in the wrong uts namespace");
    }
    assert_nothing_left(&e, &id, &b.dir);
}

#[test]
fn failing_create_runtime_hook_leaves_nothing() {
    let e = Env::new();
    let out = e.tmp.path().join("state.json");
    let o = out.to_str().unwrap().to_string();
    let b = e.sh_bundle("true", |b| {
        b.spec["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {o}; exit 3")]}]});
    });
    let id = unique_id("hookfail");
    let c = e.oci(&["create", "--bundle", b.path(), &id]);
    assert!(!c.status.success());
    let err = text(&c.stderr);
    assert!(err.contains("hooks.createRuntime[0]"), "{err}");
    let st: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(
        !pid_exists(pid),
        "the init {pid} outlived the failed create"
    );
    // No mount of the bundle is left (a total count would race with tests that mount on the
    // host meanwhile).
    assert_nothing_left(&e, &id, &b.dir);
    assert!(!e.oci(&["state", &id]).status.success());
}

#[test]
fn poststop_failure_only_warns_and_hook_timeout_fails_create() {
    let e = Env::new();
    let b = e.sh_bundle("true", |b| {
        b.spec["hooks"] = json!({"poststop": [{"path": "/bin/false"}]});
    });
    let id = unique_id("poststop");
    let o = e.oci(&["run", "--bundle", b.path(), &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_nothing_left(&e, &id, &b.dir);
    let b2 = e.sh_bundle("true", |b| {
        b.spec["hooks"] = json!({"poststop": [{"path": "/bin/false"}]});
    });
    let id = unique_id("poststop2");
    assert!(e
        .oci(&["create", "--bundle", b2.path(), &id])
        .status
        .success());
    let st = e.oci(&["start", &id]);
    assert!(st.status.success(), "{}", text(&st.stderr));
    e.wait_status(&id, "stopped", 10);
    let d = e.oci(&["delete", &id]);
    assert!(d.status.success(), "{}", text(&d.stderr));
    assert!(
        text(&d.stderr).contains("poststop"),
        "a warning names the hook: {}",
        text(&d.stderr)
    );
    assert_nothing_left(&e, &id, &b2.dir);

    let b3 = e.sh_bundle("true", |b| {
        b.spec["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let id = unique_id("hooktimeout");
    let t = std::time::Instant::now();
    let c = e.oci(&["create", "--bundle", b3.path(), &id]);
    assert!(!c.status.success());
    assert!(
        t.elapsed().as_secs() < 10,
        "the timeout did not stop the hook"
    );
    assert!(text(&c.stderr).contains("timed out"), "{}", text(&c.stderr));
    assert_nothing_left(&e, &id, &b3.dir);
}

#[test]
fn terminal_through_console_socket_with_size() {
    let e = Env::new();
    let sock = e.tmp.path().join("console.sock");
    let rx = console_listener(&sock);
    let b = e.sh_bundle("echo size=$(stty size); echo tty=$(tty); echo console=$(stat -c %F /dev/console); echo out=tty-ok", |b| {
        b.spec["process"]["terminal"] = json!(true);
        b.spec["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    let id = unique_id("tty");
    let c = e.oci(&[
        "create",
        "--bundle",
        b.path(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    let master = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("no terminal received");
    let reader = std::thread::spawn(move || read_all(master));
    assert!(e.oci(&["start", &id]).status.success());
    e.wait_status(&id, "stopped", 10);
    let out = reader.join().unwrap();
    assert!(e.oci(&["delete", &id]).status.success());
    let v = kv(&out.replace('\r', ""));
    assert_eq!(v["size"], "33 101", "{out}");
    assert!(v["tty"].starts_with("/dev/pts/"), "{out}");
    assert_eq!(v["console"], "character special file", "{out}");
    assert_eq!(v["out"], "tty-ok", "{out}");
    assert_nothing_left(&e, &id, &b.dir);
}

#[test]
fn failing_create_container_and_start_container_hooks() {
    let e = Env::new();
    // createContainer fails: create fails and leaves nothing.
    let b = e.sh_bundle("sleep 100", |b| {
        b.spec["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]});
    });
    let id = unique_id("cchook");
    let o = e.oci(&["create", "--bundle", b.path(), &id]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("hooks.createContainer[0]"),
        "{}",
        text(&o.stderr)
    );
    assert_nothing_left(&e, &id, &b.dir);
    assert!(processes_mentioning(&id).is_empty());
    // startContainer fails (its path resolves in the container): start fails, the container
    // is stopped and can be deleted.
    let b = e.sh_bundle("sleep 100", |b| {
        b.spec["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    });
    let id = unique_id("schook");
    assert!(e
        .oci(&["create", "--bundle", b.path(), &id])
        .status
        .success());
    let o = e.oci(&["start", &id]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("hooks.startContainer[0]"),
        "{}",
        text(&o.stderr)
    );
    e.wait_status(&id, "stopped", 10);
    assert!(e.oci(&["delete", &id]).status.success());
    assert_nothing_left(&e, &id, &b.dir);
}
