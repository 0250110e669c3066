//! `features`: what this runtime supports, as the runtime-spec features document.

use anyhow::Result;
use serde_json::json;

use crate::args::parse;
use crate::Global;

/// Runs the command.
pub fn main(_g: &Global, args: &[String]) -> Result<i32> {
    parse(args, &[], false)?;
    let mode = condo_cgroups::detect().ok();
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": condo_runtime::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime",
            "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime",
            "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "ridmap", "rnoatime",
            "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
            "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
            "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": condo_runtime::caps::known(),
            "cgroup": {
                "v1": matches!(mode, Some(condo_cgroups::Mode::V1) | Some(condo_cgroups::Mode::Hybrid)),
                "v2": matches!(mode, Some(condo_cgroups::Mode::V2) | Some(condo_cgroups::Mode::Hybrid)),
                "systemd": false,
                "systemdUser": false,
                "rdma": true
            },
            "seccomp": {
                "enabled": true,
                "actions": condo_runtime::seccomp::known_actions(),
                "operators": condo_runtime::seccomp::known_operators(),
                "archs": condo_runtime::seccomp::known_archs(),
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": std::path::Path::new("/sys/kernel/security/apparmor").exists()},
            "selinux": {"enabled": std::path::Path::new("/sys/fs/selinux/enforce").exists()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.condo.runtime.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
