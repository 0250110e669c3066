//! Tenancy end to end: tenants, users, roles and tokens; every route of the daemon walked by a
//! tenant that does not own the resources it names; quotas under concurrent creates; the
//! audit log. A real condod on a temporary root (needs root). The CLI's side is in contexts.rs.

mod common;
mod netns;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::tenancy::{
    call, create, get, import_as, import_image, post, refused, set_quota, tenant, user,
};
use common::Daemon;
use serde_json::{json, Value};

/// The daemon's route table, read from its source so that a new route is walked as soon as it
/// is declared: (method, path, access).
fn routes() -> Vec<(String, String, String)> {
    let src = include_str!("../src/api/mod.rs");
    let start = src.find("pub const ROUTES").expect("ROUTES in api/mod.rs");
    let end = start + src[start..].find("];").unwrap();
    src[start..end]
        .lines()
        .filter(|l| l.trim_start().starts_with("(\""))
        .map(|l| {
            let parts: Vec<&str> = l.split('"').collect();
            let access = parts[4].trim_matches(|c: char| !c.is_alphanumeric());
            (parts[1].into(), parts[3].into(), access.into())
        })
        .collect()
}

#[test]
fn tenants_users_roles_and_tokens() {
    let d = Daemon::start();
    tenant(&d, "alpha", json!({}));
    tenant(&d, "beta", json!({}));
    // Bad input names its field and changes nothing.
    for (body, field) in [
        (json!({"name": "../x"}), "name"),
        (
            json!({"name": "ok", "quota": {"memory": -1}}),
            "quota.memory",
        ),
        (
            json!({"name": "ok", "quota": {"cpus": "two"}}),
            "quota.cpus",
        ),
        (json!({"name": "ok", "quota": {"dsik": 1}}), "quota.dsik"),
        (
            json!({"name": "ok", "quota": {"memory": u64::MAX}}),
            "quota.memory",
        ),
    ] {
        let a = post(&d, None, "/v1/tenants", &body.to_string());
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert_eq!(a.json()["field"], field, "{body}: {}", a.body);
    }
    let a = post(&d, None, "/v1/tenants", r#"{"name":"alpha"}"#);
    assert_eq!(a.status, 409, "{}", a.body);
    let list = get(&d, None, "/v1/tenants").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "alpha", "beta"]);

    let (_, alice) = user(&d, None, "alpha", "alice", "tenant-owner");
    // The owner makes its own tenant's users, never an admin, never in another tenant.
    let (_, otto) = user(&d, Some(&alice), "alpha", "otto", "operator");
    let (_, rosa) = user(&d, Some(&alice), "alpha", "rosa", "read-only");
    let mk = |by: &str, body: Value| {
        call(
            &d,
            Some(by),
            "POST",
            "/v1/users",
            Some(&body.to_string()),
            false,
        )
    };
    let a = mk(&alice, json!({"name": "boss", "role": "admin"}));
    assert_eq!(a.status, 403, "{}", a.body);
    let a = mk(
        &alice,
        json!({"name": "spy", "tenant": "beta", "role": "read-only"}),
    );
    assert_eq!(a.status, 404, "{}", a.body);
    let a = mk(&alice, json!({"name": "root", "role": "read-only"}));
    refused(&a, 400, "field", "name");
    let a = mk(&alice, json!({"name": "x", "role": "owner"}));
    refused(&a, 400, "field", "role");
    // An operator runs workloads but does not manage people; read-only changes nothing.
    let a = mk(&otto, json!({"name": "y", "role": "read-only"}));
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(&d, Some(&otto), "/v1/tokens", r#"{"user":"otto"}"#);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(&d, Some(&rosa), "/v1/containers", r#"{"image":"x"}"#);
    assert_eq!(a.status, 403, "{}", a.body);

    let who = get(&d, Some(&otto), "/v1/whoami").json();
    assert_eq!(
        (
            who["id"].clone(),
            who["tenant"].clone(),
            who["role"].clone()
        ),
        (json!("otto"), json!("alpha"), json!("operator"))
    );
    // A new role takes effect on the user's tokens at once; no one gives a role above its own.
    let a = post(
        &d,
        Some(&alice),
        "/v1/users/otto/role",
        r#"{"role":"read-only"}"#,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(&d, Some(&otto), "/v1/containers", r#"{"image":"x"}"#);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(
        &d,
        Some(&alice),
        "/v1/users/otto/role",
        r#"{"role":"admin"}"#,
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(
        &d,
        Some(&alice),
        "/v1/users/otto/role",
        r#"{"role":"root"}"#,
    );
    refused(&a, 400, "field", "role");
    let a = post(
        &d,
        Some(&otto),
        "/v1/users/otto/role",
        r#"{"role":"operator"}"#,
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(
        &d,
        Some(&alice),
        "/v1/users/otto/role",
        r#"{"role":"operator"}"#,
    );
    assert_eq!(a.json()["role"], "operator", "{}", a.body);
    // Names are per tenant: beta may have its own "alice", and no one learns of alpha's.
    let (_, beta_alice) = user(&d, None, "beta", "alice", "read-only");
    let who = get(&d, Some(&beta_alice), "/v1/whoami").json();
    assert_eq!(
        (who["tenant"].clone(), who["role"].clone()),
        (json!("beta"), json!("read-only"))
    );
    let users = get(&d, Some(&alice), "/v1/users").json();
    assert_eq!(users.as_array().unwrap().len(), 3, "{users}");
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["tenant"] == "alpha"));

    // The secret is shown once: never listed, never stored as it is.
    let tokens = get(&d, Some(&alice), "/v1/tokens");
    assert_eq!(tokens.status, 200);
    assert!(!tokens.body.contains(&alice) && !tokens.body.contains("secret"));
    assert_eq!(
        tokens.json().as_array().unwrap().len(),
        3,
        "{}",
        tokens.body
    );
    let mine = get(&d, Some(&otto), "/v1/tokens").json();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    for f in ["condod.db", "condod.db-wal"] {
        let bytes = std::fs::read(d.root.join(f)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&alice), "{f} holds a token's secret");
    }

    // Expiry, revocation and removal of the user each end a token.
    let a = post(
        &d,
        Some(&alice),
        "/v1/tokens",
        r#"{"user":"otto","name":"ci","expires_in":1}"#,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let short = a.json()["secret"].as_str().unwrap().to_string();
    assert!(a.json()["token"]["expires_at"].is_string());
    assert_eq!(get(&d, Some(&short), "/v1/whoami").status, 200);
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(get(&d, Some(&short), "/v1/whoami").status, 401);
    let a = post(
        &d,
        Some(&alice),
        "/v1/tokens",
        r#"{"user":"otto","expires_in":0}"#,
    );
    refused(&a, 400, "field", "expires_in");
    let a = post(&d, Some(&alice), "/v1/tokens", r#"{"user":"rosa"}"#);
    let (rosa2_id, rosa2) = (
        a.json()["token"]["id"].as_str().unwrap().to_string(),
        a.json()["secret"].as_str().unwrap().to_string(),
    );
    assert_eq!(get(&d, Some(&rosa2), "/v1/whoami").status, 200);
    let a = call(
        &d,
        Some(&alice),
        "DELETE",
        &format!("/v1/tokens/{rosa2_id}"),
        None,
        false,
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(get(&d, Some(&rosa2), "/v1/whoami").status, 401);
    assert_eq!(get(&d, Some(&rosa), "/v1/whoami").status, 200);
    let a = call(&d, Some(&alice), "DELETE", "/v1/users/rosa", None, false);
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(get(&d, Some(&rosa), "/v1/whoami").status, 401);
    // The admin token is not revoked through the API.
    let a = call(&d, None, "DELETE", "/v1/tokens/admin", None, false);
    assert_eq!(a.status, 409, "{}", a.body);

    // A tenant with users goes with them; one with containers stays.
    let a = call(&d, None, "DELETE", "/v1/tenants/beta", None, false);
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(get(&d, Some(&beta_alice), "/v1/whoami").status, 401);
    let a = call(&d, None, "DELETE", "/v1/tenants/default", None, false);
    assert_eq!(a.status, 409, "{}", a.body);
}

/// What tenant A ("alpha") owns, for tenant B ("beta") to try.
struct Owned {
    container: String,
    snapshot: String,
    user: String,
    token: String,
    network: String,
    volume: String,
    image: String,
}

/// The path of `route` naming A's resources (`other`: naming ones that exist nowhere); `None`
/// for routes that name no resource of a tenant (collections and shared templates).
fn concrete(route: &str, a: &Owned, other: bool) -> Option<String> {
    let pick = |mine: &str, none: &str| {
        if other {
            none.to_string()
        } else {
            mine.to_string()
        }
    };
    if route.starts_with("/v1/templates/") {
        return None;
    }
    if !route.contains('{') {
        return None;
    }
    let p = route
        .replace(
            "/v1/containers/{id}",
            &format!("/v1/containers/{}", pick(&a.container, "c0ffee00nothere")),
        )
        .replace("{snapshot}", &pick(&a.snapshot, "nosnap"))
        .replace(
            "/v1/tenants/{name}",
            &format!("/v1/tenants/{}", pick("alpha", "nowhere")),
        )
        .replace(
            "/v1/users/{name}",
            &format!("/v1/users/{}", pick(&a.user, "nobody")),
        )
        .replace(
            "/v1/volumes/{name}",
            &format!("/v1/volumes/{}", pick(&a.volume, "nowhere-data")),
        )
        .replace(
            "/v1/tokens/{id}",
            &format!("/v1/tokens/{}", pick(&a.token, "tok-000000000000")),
        )
        .replace(
            "/v1/networks/{name}",
            &format!("/v1/networks/{}", pick(&a.network, "nowhere-net")),
        )
        .replace(
            "/v1/images/{name}",
            &format!("/v1/images/{}", pick(&a.image, "nowhere-app:1")),
        );
    assert!(
        !p.contains('{'),
        "route {route}: the walk knows no resource of tenant A for it; add one to Owned"
    );
    Some(p)
}

/// Query strings that keep streams from following.
fn no_follow(path: &str) -> String {
    if path.ends_with("/stats") {
        format!("{path}?stream=false")
    } else if path.ends_with("/events") {
        format!("{path}?since=0&follow=false")
    } else {
        path.to_string()
    }
}

#[test]
fn every_route_keeps_tenants_apart() {
    // A's network gets a bridge: it must not be the host's.
    netns::private_netns();
    let d = Daemon::start();
    import_image(&d);
    tenant(&d, "alpha", json!({}));
    tenant(&d, "beta", json!({}));
    let (_, alice) = user(&d, None, "alpha", "alice", "tenant-owner");
    let (alice_tok, _) = user(&d, Some(&alice), "alpha", "otto", "operator");
    let (_, bob) = user(&d, None, "beta", "bob", "tenant-owner");
    let (_, rita) = user(&d, Some(&bob), "beta", "rita", "read-only");

    // A's container runs with a terminal (exec and attach would both work for A), with a
    // snapshot taken while it was stopped.
    let a = post(&d, Some(&alice), "/v1/containers", &json!({"name": "web", "image": "bb:1", "tty": true, "command": ["sh", "-c", "echo alpha-secret-output; sleep 1000"]}).to_string());
    assert_eq!(a.status, 201, "{}", a.body);
    let cid = a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(a.json()["tenant"], "alpha");
    let a = post(
        &d,
        Some(&alice),
        &format!("/v1/containers/{cid}/snapshots"),
        r#"{"name":"s1"}"#,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let a = call(
        &d,
        Some(&alice),
        "POST",
        &format!("/v1/containers/{cid}/start"),
        None,
        false,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    // A's volume, which B must not tell from one that does not exist.
    let a = post(&d, Some(&alice), "/v1/volumes", r#"{"name":"alpha-data"}"#);
    assert_eq!(a.status, 201, "{}", a.body);
    // A's own image.
    let a = import_as(&d, Some(&alice), &d.image_tar("alpha-app:1"), "alpha-app:1");
    assert_eq!(a.status, 201, "{}", a.body);
    let owned = Owned {
        container: cid.clone(),
        snapshot: "s1".into(),
        user: "otto".into(),
        token: alice_tok.clone(),
        network: "alpha-net".into(),
        volume: "alpha-data".into(),
        image: "alpha-app:1".into(),
    };
    let a = post(&d, Some(&alice), "/v1/networks", r#"{"name":"alpha-net"}"#);
    assert_eq!(a.status, 201, "{}", a.body);
    // B's own container, never started, for the read-only walk; B may use the name A uses.
    let bid = create(&d, Some(&bob), json!({"name": "web", "image": "bb:1"}));
    let mine = Owned {
        container: bid.clone(),
        snapshot: "nosnap".into(),
        user: "rita".into(),
        token: "tok-000000000000".into(),
        network: "nowhere-net".into(),
        volume: "nowhere-data".into(),
        image: "bb:1".into(),
    };
    let events_before = get(&d, Some(&alice), "/v1/events?since=0&follow=false").body;

    let routes = routes();
    assert!(
        routes.len() > 40,
        "the route table did not parse: {routes:?}"
    );
    let mut walked = 0;
    for (method, route, access) in &routes {
        let m = method.to_uppercase();
        let upgrades: &[bool] = if route.ends_with("/exec") || route.ends_with("/attach") {
            &[false, true]
        } else {
            &[false]
        };
        // B against A's resource, and against one that does not exist: the same answer, and for
        // every route B's role may use, that answer is 404.
        if let (Some(theirs), Some(nowhere)) = (
            concrete(route, &owned, false),
            concrete(route, &owned, true),
        ) {
            for &up in upgrades {
                let body = (m == "POST").then_some("{}");
                let x = call(&d, Some(&bob), &m, &no_follow(&theirs), body, up);
                let y = call(&d, Some(&bob), &m, &no_follow(&nowhere), body, up);
                let strip = |s: &str| {
                    s.replace(&owned.container, "X")
                        .replace("c0ffee00nothere", "X")
                        .replace("alpha", "X")
                        .replace("nowhere", "X")
                        .replace(&owned.snapshot, "X")
                        .replace("nosnap", "X")
                        .replace(&owned.user, "X")
                        .replace("nobody", "X")
                        .replace(&owned.token, "X")
                        .replace("tok-000000000000", "X")
                };
                assert_eq!(
                    (x.status, strip(&x.body)),
                    (y.status, strip(&y.body)),
                    "{m} {route} (upgrade {up}): B tells A's resource from a missing one"
                );
                let expect = if access == "Admin" { 403 } else { 404 };
                assert_eq!(
                    x.status, expect,
                    "{m} {theirs} (upgrade {up}) as B: {}",
                    x.body
                );
                assert!(!x.body.contains("alpha-secret-output"));
                walked += 1;
            }
        }
        // Read-only on its own tenant: every route beyond reading is refused, reads are not.
        let path = concrete(route, &mine, false).unwrap_or_else(|| route.replace("{name}", "bb:1"));
        if access == "Public" {
            continue;
        }
        for &up in upgrades {
            let body = (m == "POST").then_some("{}");
            let x = call(&d, Some(&rita), &m, &no_follow(&path), body, up);
            if access == "Read" {
                assert!(
                    x.status != 401 && x.status != 403,
                    "{m} {path} as read-only: {} {}",
                    x.status,
                    x.body
                );
            } else {
                assert_eq!(
                    x.status, 403,
                    "{m} {path} (upgrade {up}) as read-only: {}",
                    x.body
                );
                assert_eq!(x.json()["code"], "forbidden");
            }
            walked += 1;
        }
    }
    assert!(walked > routes.len(), "walked {walked}");

    // Nothing of A's changed, and A's container still runs.
    let a = get(&d, Some(&alice), &format!("/v1/containers/{cid}"));
    assert_eq!(
        (a.status, a.json()["state"].clone()),
        (200, json!("running")),
        "{}",
        a.body
    );
    let a = get(&d, Some(&alice), &format!("/v1/containers/{cid}/snapshots"));
    assert!(a.body.contains("\"s1\""), "{}", a.body);
    let a = get(&d, Some(&alice), "/v1/users/otto");
    assert_eq!(a.status, 200, "{}", a.body);
    let a = get(&d, Some(&alice), "/v1/tokens");
    assert!(a.body.contains(&alice_tok), "{}", a.body);
    let a = get(&d, Some(&alice), "/v1/tenants/alpha");
    assert_eq!(a.json()["usage"]["containers"], 1, "{}", a.body);
    assert_eq!(a.json()["usage"]["images"], 1, "{}", a.body);
    let a = get(&d, Some(&alice), "/v1/images/alpha-app:1");
    assert_eq!(a.json()["tenant"], "alpha", "{}", a.body);
    let events_after = get(&d, Some(&alice), "/v1/events?since=0&follow=false").body;
    assert_eq!(
        events_before.lines().count(),
        events_after.lines().count(),
        "B's walk touched A: {events_after}"
    );

    // Collections show B only its own: containers, events, tenants, users, tokens, audit, counts.
    let list = |path: &str| get(&d, Some(&bob), path);
    let a = list("/v1/containers?all=true");
    assert_eq!(a.json().as_array().unwrap().len(), 1, "{}", a.body);
    assert_eq!(a.json()[0]["id"], bid.as_str());
    let a = list("/v1/events?since=0&follow=false");
    assert!(
        !a.body.contains(&cid) && !a.body.contains("alpha"),
        "{}",
        a.body
    );
    assert!(a.body.contains(&bid), "{}", a.body);
    let a = list("/v1/images");
    assert!(!a.body.contains("alpha"), "{}", a.body);
    assert!(a.body.contains("/bb:1\""), "{}", a.body);
    let a = list("/v1/tenants");
    assert_eq!(a.json().as_array().unwrap().len(), 1);
    assert_eq!(a.json()[0]["name"], "beta");
    for p in ["/v1/users", "/v1/tokens"] {
        let a = list(p);
        assert_eq!(a.status, 200, "{p}: {}", a.body);
        assert!(
            !a.body.contains("alpha") && !a.body.contains("otto"),
            "{p}: {}",
            a.body
        );
    }
    // B's log holds B's own requests (with the paths B sent) and the admin's making of B and
    // its owner, nothing of A's.
    let a = list("/v1/audit?limit=10000");
    for e in a.json().as_array().unwrap() {
        let who = e["principal"].as_str().unwrap();
        assert!(
            e["tenant"] == "beta" && ["bob", "rita", "root"].contains(&who),
            "{e}"
        );
    }
    let a = list("/v1/users?tenant=alpha");
    assert_eq!(a.json(), json!([]));
    let a = list("/v1/audit?tenant=alpha");
    assert_eq!(a.json(), json!([]));
    let a = list("/v1/system/info");
    assert_eq!(a.json()["containers"]["total"], 1, "{}", a.body);
    // A live event stream of B hears B's events and none of A's.
    let mut s = UnixStream::connect(d.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET /v1/events HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {bob}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("200"), "{line}");
    std::thread::sleep(Duration::from_millis(200));
    let a = call(
        &d,
        Some(&alice),
        "POST",
        &format!("/v1/containers/{cid}/pause"),
        None,
        false,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(
        &d,
        Some(&bob),
        &format!("/v1/containers/{bid}/rename"),
        r#"{"name":"web2"}"#,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let mut heard = String::new();
    while !heard.contains("\"rename\"") {
        line.clear();
        r.read_line(&mut line).unwrap();
        heard.push_str(&line);
    }
    assert!(
        !heard.contains(&cid) && !heard.contains("\"pause\""),
        "{heard}"
    );
    let a = call(
        &d,
        Some(&alice),
        "POST",
        &format!("/v1/containers/{cid}/resume"),
        None,
        false,
    );
    assert_eq!(a.status, 200, "{}", a.body);

    // The audit log has B's refused and failed attempts, and A's changes under A's tenant.
    let audit = get(&d, None, "/v1/audit?principal=bob&result=error").json();
    let entries = audit.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["route"] == "/v1/containers/{id}/exec" && e["status"] == 404),
        "{audit}"
    );
    assert!(entries.iter().all(|e| e["tenant"] == "beta"), "{audit}");
    let denied = get(&d, None, "/v1/audit?principal=rita&result=denied").json();
    assert!(denied.as_array().unwrap().len() >= 20, "{denied}");
    let made = get(
        &d,
        None,
        &format!("/v1/audit?tenant=alpha&resource=/v1/containers/{cid}"),
    )
    .json();
    let made = made.as_array().unwrap();
    assert!(
        made.iter().any(|e| e["method"] == "POST"
            && e["route"] == "/v1/containers"
            && e["result"] == "ok"
            && e["principal"] == "alice"),
        "{made:?}"
    );
    assert!(
        made.iter()
            .any(|e| e["route"] == "/v1/containers/{id}/pause"),
        "{made:?}"
    );
    // Owners read their own tenant's log; below owner, no one does.
    let a = get(&d, Some(&alice), "/v1/audit");
    assert!(
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "alpha"),
        "{}",
        a.body
    );
    assert_eq!(get(&d, Some(&rita), "/v1/audit").status, 403);
    let a = get(&d, None, "/v1/audit?limit=many");
    refused(&a, 400, "field", "limit");
    let a = get(&d, None, "/v1/audit?since=yesterday");
    refused(&a, 400, "field", "since");
    let a = get(&d, None, "/v1/audit?colour=red");
    refused(&a, 400, "field", "colour");
    // Reads are not audited; a GET that acts (the console's exec) is.
    let all = get(&d, None, "/v1/audit?limit=10000").json();
    let gets: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "GET")
        .collect();
    assert!(!gets.is_empty(), "the console was not audited");
    assert!(
        gets.iter()
            .all(|e| e["route"] == "/v1/containers/{id}/console"),
        "{gets:?}"
    );
}

#[test]
fn quotas_hold_under_concurrent_creates() {
    let d = Daemon::start();
    import_image(&d);
    tenant(
        &d,
        "gamma",
        json!({"containers": 10, "networks": 2, "bandwidth": 100000000, "monthly_traffic": 1000000000000u64, "disk": 1073741824}),
    );
    let (_, owner) = user(&d, None, "gamma", "gina", "tenant-owner");
    // The image's layers are unpacked once, by the admin, outside the quota under test.
    let a = post(
        &d,
        None,
        "/v1/containers",
        r#"{"name":"warm","image":"bb:1"}"#,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let made: Vec<(u16, Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let (d, owner) = (&d, &owner);
                s.spawn(move || {
                    let a = call(
                        d,
                        Some(owner),
                        "POST",
                        "/v1/containers",
                        Some(
                            &json!({"name": format!("c{i}"), "image": "bb:1", "limits": {"disk": 16 << 20}})
                                .to_string(),
                        ),
                        false,
                    );
                    (a.status, a.json())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = made.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(ok, 10, "{made:?}");
    for (s, v) in &made {
        assert!(
            *s == 201 || (*s == 409 && v["code"] == "quota_exceeded"),
            "{s} {v}"
        );
    }
    let t = get(&d, Some(&owner), "/v1/tenants/gamma").json();
    assert_eq!(t["usage"]["containers"], 10, "{t}");
    assert_eq!(t["usage"]["disk"], 10 * (16 << 20), "{t}");
    assert_eq!(t["quota"]["containers"], 10, "{t}");
    assert_eq!(t["quota"]["monthly_traffic"], 1000000000000u64, "{t}");
    let a = get(&d, Some(&owner), "/v1/containers?all=true");
    assert_eq!(a.json().as_array().unwrap().len(), 10);
    // Refused creates left nothing behind.
    let dirs = std::fs::read_dir(d.root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(
        dirs, 11,
        "container directories for 10 containers and the warm one"
    );

    // Memory and CPU quotas count the containers' limits; each container must state them.
    let a = post(
        &d,
        None,
        "/v1/tenants/gamma/quota",
        r#"{"containers": 20, "memory": 100000000, "cpus": 1}"#,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.json()["quota"]["disk"].is_null(),
        "the body replaces the quota: {}",
        a.body
    );
    let a = post(
        &d,
        Some(&owner),
        "/v1/containers",
        r#"{"image":"bb:1","limits":{"cpus":0.5}}"#,
    );
    refused(&a, 400, "field", "limits.memory");
    let a = post(
        &d,
        Some(&owner),
        "/v1/containers",
        r#"{"image":"bb:1","limits":{"memory":60000000,"cpus":0.5}}"#,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let big = a.json()["id"].as_str().unwrap().to_string();
    let a = post(
        &d,
        Some(&owner),
        "/v1/containers",
        r#"{"image":"bb:1","limits":{"memory":60000000,"cpus":0.5}}"#,
    );
    refused(&a, 409, "code", "quota_exceeded");
    let a = post(
        &d,
        Some(&owner),
        &format!("/v1/containers/{big}/update"),
        r#"{"limits":{"memory":120000000}}"#,
    );
    refused(&a, 409, "code", "quota_exceeded");
    let a = post(
        &d,
        Some(&owner),
        &format!("/v1/containers/{big}/update"),
        r#"{"limits":{"memory":90000000}}"#,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let t = get(&d, Some(&owner), "/v1/tenants/gamma").json();
    assert_eq!(
        (
            t["usage"]["containers"].clone(),
            t["usage"]["memory"].clone()
        ),
        (json!(11), json!(90000000)),
        "{t}"
    );
    // The tenant cannot change its own quota.
    let a = post(&d, Some(&owner), "/v1/tenants/gamma/quota", "{}");
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(&d, None, "/v1/tenants/gamma/quota", r#"{"cpus": -1}"#);
    refused(&a, 400, "field", "cpus");
    let a = call(&d, None, "DELETE", "/v1/tenants/gamma", None, false);
    assert_eq!(a.status, 409, "{}", a.body);
}

#[test]
fn tenants_own_their_images() {
    let d = Daemon::start();
    import_image(&d);
    tenant(&d, "alpha", json!({}));
    tenant(&d, "beta", json!({}));
    tenant(&d, "delta", json!({"disk": 4096}));
    let (_, alice) = user(&d, None, "alpha", "alice", "operator");
    let (_, bob) = user(&d, None, "beta", "bob", "operator");
    let (_, dora) = user(&d, None, "delta", "dora", "operator");
    let (_, rosa) = user(&d, None, "alpha", "rosa", "read-only");
    let (app, bb) = (d.image_tar("app:1"), d.image_tar("bb:1"));
    let names = |by: &str| -> Vec<(String, Value)> {
        let a = get(&d, Some(by), "/v1/images");
        assert_eq!(a.status, 200, "{}", a.body);
        let mut v: Vec<(String, Value)> = a
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let n = i["name"].as_str().unwrap();
                let short = n.trim_start_matches("docker.io/library/").to_string();
                (short, i["tenant"].clone())
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };

    // A tenant's import makes its own image; the same name in two tenants is two images.
    let a = import_as(&d, Some(&alice), &app, "app:1");
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()[0]["tenant"], "alpha", "{}", a.body);
    assert_eq!(get(&d, Some(&bob), "/v1/images/app:1").status, 404);
    let a = import_as(&d, Some(&bob), &app, "app:1");
    assert_eq!(a.status, 201, "{}", a.body);
    // A tenant's own name goes before a shared one, for it alone.
    let a = import_as(&d, Some(&alice), &bb, "bb:1");
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        names(&alice),
        [
            ("app:1".to_string(), json!("alpha")),
            ("bb:1".to_string(), Value::Null),
            ("bb:1".to_string(), json!("alpha"))
        ]
    );
    assert_eq!(
        names(&bob),
        [
            ("app:1".to_string(), json!("beta")),
            ("bb:1".to_string(), Value::Null)
        ]
    );
    assert_eq!(
        get(&d, Some(&alice), "/v1/images/bb:1").json()["tenant"],
        "alpha"
    );
    assert!(get(&d, Some(&bob), "/v1/images/bb:1").json()["tenant"].is_null());
    assert_eq!(
        names(&rosa).len(),
        3,
        "a reader of alpha sees alpha's images"
    );
    assert_eq!(
        get(&d, None, "/v1/images").json().as_array().unwrap().len(),
        4
    );
    let a = get(&d, None, "/v1/images/app:1?tenant=beta");
    assert_eq!(a.json()["tenant"], "beta", "{}", a.body);
    let a = get(&d, Some(&alice), "/v1/images/app:1?tenant=beta");
    refused(&a, 400, "field", "tenant");
    // A read-only principal imports nothing; a tenant pulls from no registry on this host.
    let a = import_as(&d, Some(&rosa), &bb, "x:1");
    assert_eq!(a.status, 403, "{}", a.body);
    for r in [
        "127.0.0.1:5000/bb:1",
        "localhost:5000/bb:1",
        "[::1]:5000/bb:1",
        "0.0.0.0:5000/bb:1",
    ] {
        let body = json!({ "reference": r }).to_string();
        let a = post(&d, Some(&alice), "/v1/images/pull", &body);
        refused(&a, 400, "field", "reference");
    }
    let body = json!({"reference": "registry.example/bb:1", "plain_http": true}).to_string();
    let a = post(&d, Some(&alice), "/v1/images/pull", &body);
    refused(&a, 400, "field", "reference");
    let t = get(&d, Some(&alice), "/v1/tenants/alpha").json();
    assert_eq!(t["usage"]["images"], 2, "{t}");
    assert!(t["usage"]["disk"].as_u64().unwrap() > 4096, "{t}");

    // Containers run from their tenant's own image; one in use is not removed.
    create(&d, Some(&alice), json!({"name": "web", "image": "app:1"}));
    create(&d, Some(&bob), json!({"name": "web", "image": "bb:1"}));
    let a = call(&d, Some(&alice), "DELETE", "/v1/images/app:1", None, false);
    refused(&a, 409, "code", "conflict");
    assert!(a.body.contains("web"), "{}", a.body);
    // Bob's container uses the shared bb:1; alice's own bb:1 is free to go, the shared one not.
    let a = call(&d, Some(&bob), "DELETE", "/v1/images/bb:1", None, false);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = call(&d, None, "DELETE", "/v1/images/bb:1", None, false);
    refused(&a, 409, "code", "conflict");
    let a = call(&d, Some(&alice), "DELETE", "/v1/images/bb:1", None, false);
    assert_eq!(a.status, 204, "{}", a.body);
    // Removing beta's app:1 leaves alpha's, and a collection keeps every blob it names.
    let before = get(&d, Some(&alice), "/v1/images/app:1/export");
    assert_eq!(before.status, 200);
    let a = call(&d, Some(&bob), "DELETE", "/v1/images/app:1", None, false);
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(get(&d, Some(&bob), "/v1/images/app:1").status, 404);
    let a = post(&d, None, "/v1/images/prune", "");
    assert_eq!(a.status, 200, "{}", a.body);
    let after = get(&d, Some(&alice), "/v1/images/app:1/export");
    assert_eq!(
        (after.status, after.body.len()),
        (200, before.body.len()),
        "alpha's image lost content to beta's removal"
    );
    let t = get(&d, Some(&bob), "/v1/tenants/beta").json();
    assert_eq!(
        (t["usage"]["images"].clone(), t["usage"]["disk"].clone()),
        (json!(0), json!(0)),
        "{t}"
    );

    // A tenant's images count towards its disk quota: an archive larger than what is left is
    // refused and leaves nothing.
    let a = import_as(&d, Some(&dora), &d.image_tar("big:1"), "big:1");
    refused(&a, 409, "code", "quota_exceeded");
    assert_eq!(names(&dora), [("bb:1".to_string(), Value::Null)]);
    let t = get(&d, Some(&dora), "/v1/tenants/delta").json();
    assert_eq!(t["usage"]["disk"], 0, "{t}");
    set_quota(&d, "delta", json!({"disk": 1073741824}));
    let a = import_as(&d, Some(&dora), &d.image_tar("big:1"), "big:1");
    assert_eq!(a.status, 201, "{}", a.body);
    let t = get(&d, Some(&dora), "/v1/tenants/delta").json();
    assert_eq!(t["usage"]["images"], 1, "{t}");
    let used = t["usage"]["disk"].as_u64().unwrap();
    assert!(used > 4096, "{t}");
    // A quota lowered below what the images hold refuses the next one, which is not kept.
    set_quota(&d, "delta", json!({"disk": used + 1}));
    let a = import_as(&d, Some(&dora), &d.image_tar("other:2"), "other:2");
    refused(&a, 409, "code", "quota_exceeded");
    assert_eq!(get(&d, Some(&dora), "/v1/images/other:2").status, 404);
    // The admin removes a tenant's own image by naming the tenant; a tenant goes with its own
    // images.
    let (code, _, err) = d.condo(&["rmi", "big:1"]);
    assert_eq!(code, 3, "the shared big:1 does not exist: {err}");
    let (code, _, err) = d.condo(&["rmi", "--tenant", "delta", "big:1"]);
    assert_eq!(code, 0, "rmi --tenant: {err}");
    assert_eq!(get(&d, Some(&dora), "/v1/images/big:1").status, 404);
    set_quota(&d, "delta", json!({}));
    let a = import_as(&d, Some(&dora), &d.image_tar("big:1"), "big:1");
    assert_eq!(a.status, 201, "{}", a.body);
    let a = call(&d, None, "DELETE", "/v1/tenants/delta", None, false);
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(!d.root.join("storage/images/scopes/delta").exists());
    assert!(d.root.join("storage/images/scopes/alpha").exists());
}

/// What became of a connection to a sink.
#[derive(Debug, PartialEq)]
enum Reach {
    /// It took the bytes.
    Sent,
    /// It was refused or cut (the sink is not listening yet).
    Refused,
    /// No answer at all: its packets are dropped.
    Blocked,
}

fn reach(addr: &str, bytes: usize) -> Reach {
    // Long enough for the SYN to be sent again twice (after 1 and 3 s): a sink whose one-place
    // queue of connections is full drops a SYN now and then.
    let s = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5));
    let mut s = match s {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Reach::Blocked,
        Err(_) => return Reach::Refused,
    };
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    match s.write_all(&vec![7u8; bytes]) {
        Ok(()) => Reach::Sent,
        Err(_) => Reach::Refused,
    }
}

/// Whether the sink at `addr` takes `bytes`, trying again while it is not listening yet.
fn sends(addr: &str, bytes: usize) -> bool {
    for _ in 0..50 {
        match reach(addr, bytes) {
            Reach::Sent => return true,
            Reach::Blocked => return false,
            Reach::Refused => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    false
}

/// Polls `f` every 200 ms until it holds; panics with `what` after `secs` seconds.
fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn monthly_traffic_quota_stops_a_tenants_traffic() {
    netns::private_netns();
    let d = Daemon::start();
    import_image(&d);
    tenant(&d, "omega", json!({"monthly_traffic": 1_000_000}));
    tenant(&d, "sigma", json!({"monthly_traffic": 1_000_000}));
    let (_, olga) = user(&d, None, "omega", "olga", "tenant-owner");
    let (_, sam) = user(&d, None, "sigma", "sam", "tenant-owner");
    // A listener that stays, discarding what each connection sends.
    let sink = "exec nc -ll -p 8080 -e sh -c 'cat > /dev/null'";
    let run = |by: &str, net: &str, name: &str| -> String {
        let id = create(
            &d,
            Some(by),
            json!({"name": name, "image": "bb:1", "network": net, "command": ["sh", "-c", sink]}),
        );
        let a = post(&d, Some(by), &format!("/v1/containers/{id}/start"), "");
        assert_eq!(a.status, 200, "{}", a.body);
        let c = get(&d, Some(by), &format!("/v1/containers/{id}")).json();
        format!("{}:8080", c["endpoint"]["ipv4"].as_str().unwrap())
    };
    let traffic = |by: &str, t: &str| -> u64 {
        get(&d, Some(by), &format!("/v1/tenants/{t}")).json()["usage"]["traffic"]
            .as_u64()
            .unwrap()
    };
    for (by, net) in [(&olga, "o1"), (&sam, "s1")] {
        let a = post(
            &d,
            Some(by),
            "/v1/networks",
            &json!({"name": net}).to_string(),
        );
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let first = run(&olga, "o1", "first");
    let second = run(&olga, "o1", "second");
    let neighbour = run(&sam, "s1", "neighbour");
    // Under the quota, traffic flows; its sum over the tenant's containers reaches the quota.
    until(30, "the sinks never listened", || {
        sends(&first, 1000) && sends(&second, 1000) && sends(&neighbour, 1000)
    });
    for _ in 0..3 {
        assert!(sends(&first, 200_000));
        assert!(sends(&second, 200_000));
    }
    assert!(sends(&neighbour, 100_000));
    // The periodic check (every 10 s) sees it and stops every container of the tenant.
    until(60, "omega's traffic was never counted", || {
        traffic(&olga, "omega") >= 1_000_000
    });
    until(60, "omega's traffic still flows past its quota", || {
        reach(&first, 1000) == Reach::Blocked && reach(&second, 1000) == Reach::Blocked
    });
    // A container of the tenant that starts now is stopped from the start; the other tenant's
    // traffic flows, and its usage is its own.
    let late = run(&olga, "o1", "late");
    let ruleset = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let ip = late.split(':').next().unwrap();
    assert!(
        String::from_utf8_lossy(&ruleset.stdout).contains(&format!("saddr {ip} drop")),
        "{}",
        String::from_utf8_lossy(&ruleset.stdout)
    );
    assert!(sends(&neighbour, 1000));
    let s = traffic(&sam, "sigma");
    assert!((100_000..1_000_000).contains(&s), "sigma: {s}");
    // Deleting a container keeps its traffic counted for the month.
    let before = traffic(&olga, "omega");
    let a = call(
        &d,
        Some(&olga),
        "DELETE",
        "/v1/containers/second?force=true",
        None,
        false,
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(traffic(&olga, "omega") >= before);
    // The admin raises the quota: the tenant's traffic flows again at once.
    set_quota(&d, "omega", json!({"monthly_traffic": 100000000}));
    assert!(sends(&first, 1000), "raised quota, still stopped");
    until(30, "the late container's sink never listened", || {
        sends(&late, 1000)
    });
}
