//! Helpers of the tenancy tests: requests with a token, and tenants, users and tokens made
//! through the API.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{json, Value};

use super::{request_with, Answer, Daemon};

/// A request over the daemon's socket with a bearer token (none: the root peer, an admin); with
/// `upgrade`, asking for an exec connection, whose refusal is read by its length.
pub fn call(
    d: &Daemon,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
    upgrade: bool,
) -> Answer {
    let s = UnixStream::connect(d.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra = if upgrade {
        "Connection: Upgrade\r\nUpgrade: condo-exec\r\n"
    } else {
        "Connection: close\r\n"
    };
    request_with(s, method, path, body, token, extra)
}

pub fn post(d: &Daemon, by: Option<&str>, path: &str, body: &str) -> Answer {
    call(d, by, "POST", path, Some(body), false)
}

pub fn get(d: &Daemon, by: Option<&str>, path: &str) -> Answer {
    call(d, by, "GET", path, None, false)
}

/// Asserts a refusal: its status, and its `code` or `field`.
pub fn refused(a: &Answer, status: u16, key: &str, value: &str) {
    assert_eq!(
        (a.status, a.json()[key].as_str()),
        (status, Some(value)),
        "{}",
        a.body
    );
}

/// Imports the busybox image `bb:1` as the admin: published to every tenant.
pub fn import_image(d: &Daemon) {
    let tar = d.image_tar("bb:1");
    let (code, _, err) = d.condo(&["image", "import", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "import: {err}");
}

/// Imports the archive `tar` as `by` (none: the admin) under `name`.
pub fn import_as(d: &Daemon, by: Option<&str>, tar: &std::path::Path, name: &str) -> Answer {
    use std::io::Write;
    let data = std::fs::read(tar).unwrap();
    let mut s = UnixStream::connect(d.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = by
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /v1/images/import?name={name} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    // A refusal may come before the whole body is read.
    let _ = s.write_all(&data);
    super::read_answer(s)
}

/// Creates a container as `by` from `body`; returns its id.
pub fn create(d: &Daemon, by: Option<&str>, body: Value) -> String {
    let a = call(
        d,
        by,
        "POST",
        "/v1/containers",
        Some(&body.to_string()),
        false,
    );
    assert_eq!(a.status, 201, "create {body}: {}", a.body);
    a.json()["id"].as_str().unwrap().to_string()
}

/// Replaces the quota of `tenant` as the admin.
pub fn set_quota(d: &Daemon, tenant: &str, quota: Value) {
    let path = format!("/v1/tenants/{tenant}/quota");
    let a = call(d, None, "POST", &path, Some(&quota.to_string()), false);
    assert_eq!(a.status, 200, "quota of {tenant}: {}", a.body);
}

/// Makes a tenant (with a quota) as the admin.
pub fn tenant(d: &Daemon, name: &str, quota: Value) {
    let a = call(
        d,
        None,
        "POST",
        "/v1/tenants",
        Some(&json!({"name": name, "quota": quota}).to_string()),
        false,
    );
    assert_eq!(a.status, 201, "tenant {name}: {}", a.body);
}

/// Makes a user and a token for it as `by`; returns (token id, secret).
pub fn user(
    d: &Daemon,
    by: Option<&str>,
    tenant: &str,
    name: &str,
    role: &str,
) -> (String, String) {
    let a = call(
        d,
        by,
        "POST",
        "/v1/users",
        Some(&json!({"name": name, "tenant": tenant, "role": role}).to_string()),
        false,
    );
    assert_eq!(a.status, 201, "user {name}: {}", a.body);
    assert_eq!(a.json()["tenant"], tenant);
    let a = call(
        d,
        by,
        "POST",
        "/v1/tokens",
        Some(&json!({"user": name, "tenant": tenant}).to_string()),
        false,
    );
    assert_eq!(a.status, 201, "token for {name}: {}", a.body);
    let v = a.json();
    (
        v["token"]["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}
