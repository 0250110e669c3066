//! From a container's configuration to the OCI bundle the monitor hands to the runtime.

use condo_api::{ContainerCreate, Limits};
use condo_runtime::defaults;
use serde_json::{json, Value};

use crate::idrange::IdRange;

/// Parses `uid[:gid]`.
pub fn parse_user(s: &str) -> Option<(u32, u32)> {
    match s.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => {
            let u = s.parse().ok()?;
            Some((u, u))
        }
    }
}

/// Parses `HOST:CONTAINER[:ro|rw]` into host path, container path and read-only.
pub fn parse_volume(v: &str) -> Option<(String, String, bool)> {
    let mut it = v.split(':');
    let (host, ctr) = (it.next()?, it.next()?);
    let ro = match it.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(_) => return None,
    };
    if it.next().is_some()
        || !host.starts_with('/')
        || !ctr.starts_with('/')
        || ctr.split('/').any(|c| c == "..")
    {
        return None;
    }
    Some((host.to_string(), ctr.to_string(), ro))
}

/// `linux.resources` for `limits` (absent limits are left out).
pub fn resources(l: &Limits) -> Value {
    let mut r = json!({});
    if let Some(m) = l.memory {
        r["memory"] = json!({"limit": m});
    }
    if let Some(c) = l.cpus {
        r["cpu"] = json!({"quota": (c * 100_000.0).round() as i64, "period": 100_000u64});
    }
    if let Some(p) = l.pids {
        r["pids"] = json!({"limit": p});
    }
    r
}

/// Every capability this process can hand on (the host's bounding set may lack some).
fn all_grantable_caps() -> Vec<&'static str> {
    let last = condo_runtime::caps::last_cap() as usize;
    condo_runtime::caps::known()
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            *i <= last && condo_sys::capability::bounding_has(*i as u32).unwrap_or(false)
        })
        .map(|(_, n)| *n)
        .collect()
}

/// The config.json of a container, with its root filesystem at `rootfs`. With `ids` the
/// container gets a user namespace mapping 0–65535 to that range, and its volumes are
/// idmapped the same way; `privileged` turns the default isolation off.
pub fn config(c: &ContainerCreate, name: &str, rootfs: &str, ids: Option<IdRange>) -> Value {
    let caps = if c.privileged {
        json!(all_grantable_caps())
    } else {
        json!(defaults::CONTAINER_CAPS)
    };
    let (uid, gid) = c.user.as_deref().and_then(parse_user).unwrap_or((0, 0));
    let args = if c.command.is_empty() {
        vec!["sh".to_string()]
    } else {
        c.command.clone()
    };
    let hostname = c.hostname.clone().unwrap_or_else(|| name.to_string());
    let mut env = vec![
        defaults::PATH_ENV.to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    if c.tty {
        env.push("TERM=xterm".into());
    }
    for e in &c.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    // Never above our own hard limit: raising it needs CAP_SYS_RESOURCE, which we may lack.
    let own = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let nofile = own.min(65536);
    let mut resources = resources(&c.limits);
    // Deny every device; the runtime allows the few every container gets (null, zero, full,
    // random, urandom, tty, the console and its own ptys).
    resources["devices"] = json!([{"allow": false, "access": "rwm"}]);
    let mut v = json!({
        "ociVersion": condo_runtime::state::OCI_VERSION,
        "process": {
            "terminal": c.tty,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": c.workdir.clone().unwrap_or_else(|| "/".into()),
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": !c.privileged
        },
        "root": {"path": rootfs, "readonly": c.read_only},
        "hostname": hostname,
        "mounts": defaults::mounts(),
        "annotations": {"org.condo.name": name},
        "linux": {
            "resources": resources,
            "namespaces": defaults::namespaces(),
        }
    });
    let linux = &mut v["linux"];
    if !c.privileged {
        let (masked, readonly) = defaults::path_lists();
        linux["maskedPaths"] = masked;
        linux["readonlyPaths"] = readonly;
        linux["seccomp"] = json!(defaults::seccomp());
    }
    if let Some(ids) = ids {
        let maps = json!(crate::idmount::mappings(ids));
        linux["uidMappings"] = maps.clone();
        linux["gidMappings"] = maps;
        if let Some(ns) = linux["namespaces"].as_array_mut() {
            ns.push(json!({"type": "user"}));
        }
    }
    if let Some(mounts) = v["mounts"].as_array_mut() {
        for (host, ctr, ro) in c.volumes.iter().filter_map(|x| parse_volume(x)) {
            let mut options = vec!["rbind", "rprivate"];
            if ro {
                options.push("ro");
            }
            if ids.is_some() {
                // Host files keep their owners on both sides: uid N on disk is uid N inside.
                options.push("ridmap");
            }
            mounts.push(
                json!({"destination": ctr, "type": "bind", "source": host, "options": options}),
            );
        }
    }
    v
}

/// The process for an exec: the container's own, with the given command and overrides.
pub fn exec_process(base: &Value, x: &condo_api::ExecCreate) -> Value {
    let mut p = base.clone();
    p["args"] = json!(x.command);
    p["terminal"] = json!(x.tty);
    if let Some([rows, cols]) = x.size {
        p["consoleSize"] = json!({"height": rows, "width": cols});
    }
    if let Some(w) = &x.workdir {
        p["cwd"] = json!(w);
    }
    if let Some((uid, gid)) = x.user.as_deref().and_then(parse_user) {
        p["user"] = json!({"uid": uid, "gid": gid});
    }
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for e in &x.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|v| v.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p["env"] = json!(env);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_as_a_runtime_spec() {
        let c = ContainerCreate {
            command: vec!["echo".into(), "hi".into()],
            env: vec!["A=1".into(), "PATH=/bin".into()],
            user: Some("1000:1000".into()),
            limits: Limits {
                memory: Some(64 << 20),
                cpus: Some(0.5),
                pids: Some(100),
                disk: None,
            },
            ..Default::default()
        };
        let v = config(&c, "web", "/tmp/rootfs", None);
        let spec = condo_runtime::create::parse_spec(&serde_json::to_vec(&v).unwrap()).unwrap();
        let p = spec.process.unwrap();
        assert_eq!(p.user.uid, 1000);
        assert!(p.env.contains(&"PATH=/bin".to_string()));
        assert_eq!(p.env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(parse_user("5"), Some((5, 5)));
        assert_eq!(parse_user("x"), None);
    }

    #[test]
    fn isolation_is_the_default_and_privileged_turns_it_off() {
        let c = ContainerCreate {
            volumes: vec!["/srv:/data:ro".into()],
            ..Default::default()
        };
        let ids = IdRange { base: 1 << 30 };
        let v = config(&c, "web", "/tmp/rootfs", Some(ids));
        let spec = condo_runtime::create::parse_spec(&serde_json::to_vec(&v).unwrap()).unwrap();
        let linux = spec.linux();
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user"})));
        assert_eq!(linux.uid_mappings[0].host_id, 1 << 30);
        assert_eq!(linux.gid_mappings[0].size, 65536);
        assert_eq!(linux.masked_paths.len(), defaults::MASKED_PATHS.len());
        condo_runtime::seccomp::compile(linux.seccomp.as_ref().unwrap()).unwrap();
        assert_eq!(v["process"]["noNewPrivileges"], true);
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(!caps.contains(&json!("CAP_SYS_ADMIN")));
        let vol = v["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(vol["destination"], "/data");
        assert!(vol["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ridmap")));

        let p = ContainerCreate {
            privileged: true,
            ..c
        };
        let v = config(&p, "web", "/tmp/rootfs", None);
        assert!(v["linux"].get("seccomp").is_none());
        assert!(v["linux"].get("maskedPaths").is_none());
        assert!(v["linux"].get("uidMappings").is_none());
        assert_eq!(v["process"]["noNewPrivileges"], false);
        let vol = v["mounts"].as_array().unwrap().last().unwrap().clone();
        assert!(!vol["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ridmap")));
    }
}
