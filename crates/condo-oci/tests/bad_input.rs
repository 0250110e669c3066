//! Invalid configs and arguments: each exits non-zero, names the field, and leaves no state
//! dir, cgroup, mount or process behind.

mod common;
use common::*;

use serde_json::json;

/// Creates a container from a bundle changed by `edit` (or with `raw` as config.json) and
/// checks the refusal names every one of `want`, and that nothing is left.
fn refused_with(
    e: &Env,
    id: &str,
    edit: impl FnOnce(&mut Bundle),
    raw: Option<&str>,
    want: &[&str],
) {
    let mut b = e.bundle(&unique_id("b"), &["sh", "-c", "sleep 100"]);
    edit(&mut b);
    b.save();
    if let Some(r) = raw {
        std::fs::write(b.dir.join("config.json"), r).unwrap();
    }
    let mounts = mount_count();
    for verb in ["create", "run"] {
        let o = e.oci(&[verb, "--bundle", b.path(), id]);
        let err = text(&o.stderr);
        assert!(!o.status.success(), "{verb} {id} succeeded");
        assert_ne!(o.status.code(), None, "{verb} was killed: {err}");
        for w in want {
            assert!(
                err.contains(w),
                "{verb}: the message does not name {w:?}: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
        assert_nothing_left(e, id, &b.dir);
        let procs = processes_mentioning(id);
        assert!(procs.is_empty(), "{verb} left processes {procs:?}");
        // Other engineers' tests may mount at the same time: only ours must be gone.
        assert!(mount_count() <= mounts + 5 || mounts_mentioning(b.path()).is_empty());
    }
}

fn refused(edit: impl FnOnce(&mut Bundle), want: &[&str]) {
    let e = Env::new();
    refused_with(&e, &unique_id("bad"), edit, None, want);
}

#[test]
fn malformed_json() {
    let e = Env::new();
    refused_with(
        &e,
        &unique_id("json"),
        |_| {},
        Some("{\"ociVersion\": \"1.2.0\", \"process\": {"),
        &["config.json", "line 1"],
    );
    refused_with(&e, &unique_id("json"), |_| {}, Some(""), &["config.json"]);
}

#[test]
fn wrong_type_for_a_field() {
    refused(
        |b| b.spec["process"]["args"] = json!("sh -c true"),
        &["process.args"],
    );
    refused(
        |b| b.spec["process"]["user"]["uid"] = json!(-1),
        &["process.user.uid"],
    );
    refused(
        |b| b.spec["linux"]["namespaces"] = json!({"type": "pid"}),
        &["linux.namespaces"],
    );
}

#[test]
fn unknown_and_duplicated_namespaces() {
    refused(
        |b| {
            b.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "foo"}))
        },
        &["linux.namespaces[6].type", "foo"],
    );
    refused(
        |b| {
            b.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "pid"}))
        },
        &["linux.namespaces[6]", "pid"],
    );
    refused(
        |b| {
            b.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "ipc", "path": "/nonexistent/ns"}))
        },
        &["linux.namespaces[6]"],
    );
}

#[test]
fn bad_id_mappings() {
    let user = |b: &mut Bundle| {
        b.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}))
    };
    refused(
        |b| {
            user(b);
            b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 100}, {"containerID": 50, "hostID": 300000, "size": 10}]);
            b.spec["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 100}]);
        },
        &["linux.uidMappings[1] overlaps"],
    );
    refused(
        |b| {
            user(b);
            b.spec["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 100}]);
            b.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 100}, {"containerID": 200, "hostID": 100050, "size": 10}]);
        },
        &["linux.gidMappings[1] overlaps"],
    );
    refused(user, &["linux.uidMappings"]);
}

#[test]
fn missing_root() {
    refused(
        |b| drop(b.spec.as_object_mut().unwrap().remove("root")),
        &["root"],
    );
    refused(
        |b| b.spec["root"]["path"] = json!("does-not-exist"),
        &["root.path", "does-not-exist"],
    );
    refused(
        |b| b.spec["root"]["path"] = json!("config.json"),
        &["root.path"],
    );
}

#[test]
fn relative_paths_where_absolute_ones_are_needed() {
    refused(
        |b| {
            b.spec["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}))
        },
        &["mounts[7].destination", "tmp"],
    );
    refused(
        |b| b.spec["process"]["cwd"] = json!("work"),
        &["process.cwd"],
    );
    refused(
        |b| b.spec["linux"]["maskedPaths"] = json!(["proc/kcore"]),
        &["linux.maskedPaths[0]"],
    );
    refused(
        |b| b.spec["hooks"] = json!({"prestart": [{"path": "bin/true"}]}),
        &["hooks.prestart[0].path"],
    );
}

#[test]
fn bad_seccomp() {
    refused(
        |b| b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"}),
        &["linux.seccomp", "SCMP_ACT_NOPE"],
    );
    refused(
        |b| b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}),
        &["linux.seccomp.syscalls[0]", "SCMP_ACT_BOGUS"],
    );
    refused(
        |b| {
            b.spec["linux"]["seccomp"] =
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]})
        },
        &["linux.seccomp.architectures", "SCMP_ARCH_NOPE"],
    );
    refused(
        |b| b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        &["linux.seccomp.listenerPath"],
    );
}

#[test]
fn unknown_capability_and_rlimit() {
    refused(
        |b| {
            b.spec["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NOPE"))
        },
        &["process.capabilities.bounding", "CAP_NOPE"],
    );
    refused(
        |b| b.spec["process"]["capabilities"]["ambient"] = json!(["CAP_KILL", "NOT_A_CAP"]),
        &["process.capabilities.ambient", "NOT_A_CAP"],
    );
    refused(
        |b| b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]),
        &["process.rlimits[0]", "RLIMIT_NOPE"],
    );
    refused(
        |b| {
            b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1}])
        },
        &["process.rlimits[0]"],
    );
}

#[test]
fn bad_resources() {
    refused(
        |b| b.spec["linux"]["resources"]["cpu"] = json!({"quota": -5, "period": 100000}),
        &["linux.resources.cpu.quota"],
    );
    refused(
        |b| b.spec["linux"]["resources"]["cpu"] = json!({"cpus": "0-999"}),
        &["linux.resources.cpu.cpus", "0-999"],
    );
    // Too small to start in: the init is killed during setup; the error names the limit and
    // nothing may be left.
    refused(
        |b| b.spec["linux"]["resources"]["memory"] = json!({"limit": 4096}),
        &["linux.resources.memory.limit"],
    );
}

#[test]
fn unknown_device_type() {
    refused(
        |b| {
            b.spec["linux"]["devices"] =
                json!([{"type": "x", "path": "/dev/x", "major": 1, "minor": 1}])
        },
        &["linux.devices[0].type", "\"x\""],
    );
}

#[test]
fn sysctl_of_the_hosts_namespace() {
    refused(
        |b| {
            b.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "network");
            b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        },
        &["linux.sysctl", "net.ipv4.ip_forward"],
    );
    refused(
        |b| b.spec["linux"]["sysctl"] = json!({"vm.swappiness": "1"}),
        &["linux.sysctl", "vm.swappiness"],
    );
    refused(
        |b| b.spec["linux"]["sysctl"] = json!({"net/../kernel/core_pattern": "|/x"}),
        &["linux.sysctl"],
    );
}

#[test]
fn hostname_without_uts_namespace() {
    refused(
        |b| {
            b.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "uts");
            b.spec["hostname"] = json!("nope");
        },
        &["hostname"],
    );
}

#[test]
fn program_that_does_not_exist_fails_at_create() {
    refused(
        |b| b.spec["process"]["args"] = json!(["nosuchprogram"]),
        &["process.args[0]", "nosuchprogram"],
    );
    refused(
        |b| b.spec["process"]["args"] = json!(["/bin/nosuch"]),
        &["process.args[0]", "/bin/nosuch"],
    );
    refused(|b| b.spec["process"]["args"] = json!([]), &["process.args"]);
}

#[test]
fn bad_ids() {
    let e = Env::new();
    for id in ["a/b", "..", "", "-rf", "a\nb"] {
        let b = e.bundle(&unique_id("b"), &["true"]);
        let o = e.oci(&["create", "--bundle", b.path(), id]);
        assert!(!o.status.success(), "id {id:?} accepted");
        assert!(
            text(&o.stderr).contains("id") || text(&o.stderr).contains("usage"),
            "{id:?}: {}",
            text(&o.stderr)
        );
        assert!(!e.root.join("a").exists() && !e.tmp.path().join("b").exists());
    }
    // An id that exists is refused and the existing container is untouched.
    let b = e.bundle("dup", &["sleep", "100"]);
    let id = unique_id("dup");
    assert!(e
        .oci(&["create", "--bundle", b.path(), &id])
        .status
        .success());
    let pid = e.pid(&id);
    for verb in ["create", "run"] {
        let o = e.oci(&[verb, "--bundle", b.path(), &id]);
        assert!(!o.status.success());
        assert!(
            text(&o.stderr).contains(&id) && text(&o.stderr).contains("exists"),
            "{}",
            text(&o.stderr)
        );
    }
    assert_eq!(e.status(&id), "created");
    assert_eq!(e.pid(&id), pid);
    assert!(e.oci(&["delete", "-f", &id]).status.success());
    assert_nothing_left(&e, &id, &b.dir);
}
