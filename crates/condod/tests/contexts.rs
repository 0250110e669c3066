//! The CLI's `condo login`, named contexts and tenancy verbs against a real condod (needs root).

mod common;

use std::io::Write;
use std::process::Command;

use common::tenancy::{tenant, user};
use common::Daemon;
use serde_json::{json, Value};

#[test]
fn the_cli_logs_in_with_named_contexts() {
    let d = Daemon::start();
    tenant(&d, "alpha", json!({"containers": 3}));
    let (_, alice) = user(&d, None, "alpha", "alice", "tenant-owner");
    let cfg = d.tmp.path().join("config");
    let condo = |args: &[&str], host: Option<&str>, token: Option<&str>| {
        let mut c = Command::new(common::bin("condo"));
        c.env("XDG_CONFIG_HOME", &cfg)
            .env_remove("CONDO_HOST")
            .env_remove("CONDO_TOKEN")
            .env_remove("CONDO_CONTEXT");
        if let Some(h) = host {
            c.env("CONDO_HOST", h);
        }
        if let Some(t) = token {
            c.env("CONDO_TOKEN", t);
        }
        let o = c.args(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let host = d.host();
    // A wrong token is refused and stores nothing.
    let (code, _, err) = condo(
        &["login", "--context", "bad", "--token", "condo_wrong", &host],
        None,
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("not valid"), "{err}");
    let (code, out, err) = condo(
        &["login", "--context", "alpha", "--token", &alice, &host],
        None,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice") && out.contains("alpha"), "{out}");
    let file = cfg.join("condo/contexts.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The current context's host and token are used.
    let (code, out, err) = condo(&["system", "whoami"], None, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice"), "{out}");
    let (code, out, _) = condo(&["tenant", "usage"], None, None);
    assert_eq!(code, 0);
    assert!(out.contains("containers") && out.contains("0 / 3"), "{out}");
    // A token read from stdin, a second context, and switching between them.
    let mut c = Command::new(common::bin("condo"));
    c.env("XDG_CONFIG_HOME", &cfg)
        .env_remove("CONDO_HOST")
        .env_remove("CONDO_TOKEN")
        .args(["login", "--context", "root", "--token-stdin", &host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let admin = std::fs::read_to_string(d.root.join("admin.token")).unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(admin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, out, _) = condo(&["context", "ls"], None, None);
    assert!(out.contains("alpha") && out.contains("root *"), "{out}");
    assert!(
        !out.contains(&alice) && !out.contains(admin.trim()),
        "context ls shows a secret: {out}"
    );
    let (_, out, _) = condo(&["system", "whoami"], None, None);
    assert!(out.contains("admin"), "{out}");
    let (code, _, _) = condo(&["context", "use", "alpha"], None, None);
    assert_eq!(code, 0);
    let (_, out, _) = condo(&["system", "whoami"], None, None);
    assert!(out.contains("alice"), "{out}");
    // CONDO_TOKEN overrides the context's token; CONDO_CONTEXT picks another for one command.
    let (_, out, _) = condo(&["system", "whoami"], None, Some(admin.trim()));
    assert!(out.contains("admin"), "{out}");
    let (_, out, _) = condo(&["--context", "root", "system", "whoami"], None, None);
    assert!(out.contains("admin"), "{out}");
    // Another host does not get the context's token.
    let (code, _, err) = condo(&["system", "whoami"], Some("tcp://127.0.0.1:1"), None);
    assert_ne!(code, 0);
    assert!(err.contains("cannot reach"), "{err}");
    // The tenancy verbs.
    let (code, out, err) = condo(
        &["user", "create", "otto", "--role", "operator"],
        None,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("otto"), "{out}");
    let (code, out, err) = condo(&["token", "create", "otto", "--expires", "1h"], None, None);
    assert_eq!(code, 0, "{err}");
    let secret = out
        .lines()
        .find(|l| l.starts_with("condo_"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let (code, out, _) = condo(&["system", "whoami"], None, Some(&secret));
    assert_eq!(code, 0);
    assert!(out.contains("otto") && out.contains("operator"), "{out}");
    let (_, out, _) = condo(&["token", "ls"], None, None);
    assert!(out.contains("otto") && !out.contains(&secret), "{out}");
    let (code, _, err) = condo(&["user", "role", "otto", "read-only"], None, None);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = condo(&["system", "whoami"], None, Some(&secret));
    assert!(out.contains("read-only"), "{out}");
    let (code, _, err) = condo(&["tenant", "create", "beta"], None, None);
    assert_eq!(code, 5, "an owner may not make tenants: {err}");
    let (code, out, err) = condo(
        &[
            "--context",
            "root",
            "tenant",
            "create",
            "beta",
            "--containers",
            "5",
            "--memory",
            "1g",
        ],
        None,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("beta"), "{out}");
    let (code, out, _) = condo(&["--context", "root", "tenant", "ls"], None, None);
    assert_eq!(code, 0);
    assert!(
        out.contains("alpha") && out.contains("beta") && out.contains("0B / 1.0GiB"),
        "{out}"
    );
    let (code, _, err) = condo(
        &[
            "--context",
            "root",
            "tenant",
            "quota",
            "beta",
            "--containers",
            "7",
        ],
        None,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = condo(&["--context", "root", "tenant", "show", "beta"], None, None);
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            t["quota"]["containers"].clone(),
            t["quota"]["memory"].clone()
        ),
        (json!(7), json!(1073741824u64)),
        "{out}"
    );
    let (code, out, _) = condo(
        &["--context", "root", "audit", "--principal", "alice"],
        None,
        None,
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("/v1/users/otto") && out.contains("/v1/tokens"),
        "{out}"
    );
    let (code, out, _) = condo(
        &[
            "--context",
            "root",
            "audit",
            "--tenant",
            "alpha",
            "--output",
            "json",
        ],
        None,
        None,
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v.as_array().unwrap().iter().all(|e| e["tenant"] == "alpha"),
        "{out}"
    );
    let (code, _, _) = condo(&["context", "rm", "alpha"], None, None);
    assert_eq!(code, 0);
    let (_, out, _) = condo(&["context", "ls"], None, None);
    assert!(!out.contains("alpha"), "{out}");
    let (code, _, err) = condo(&["context", "use", "alpha"], None, None);
    assert_ne!(code, 0);
    assert!(err.contains("alpha"), "{err}");
    // A broken contexts file is named, and does not stand in the way of an explicit host and token.
    std::fs::write(&file, "{not json").unwrap();
    let (code, _, err) = condo(&["system", "whoami"], None, None);
    assert_ne!(code, 0);
    assert!(err.contains("contexts.json"), "{err}");
    let (code, out, err) = condo(&["system", "whoami"], Some(&host), Some(&alice));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice"), "{out}");
}
