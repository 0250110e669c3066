//! Named volumes end to end: made on first use by `-v NAME:/path`, data that outlives the
//! container, read-only mounts, in-use protection, force, prune, events, and the CLI verbs.

mod common;

use common::tenancy::{call, import_image, tenant, user};
use common::Daemon;
use serde_json::{json, Value};

fn volume_names(d: &Daemon) -> Vec<String> {
    d.get("/v1/volumes")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn volumes_outlive_containers_and_guard_their_users() {
    let mut d = Daemon::start();
    let rootfs = d.rootfs.to_str().unwrap().to_string();

    // First use makes the volume; the data survives the container's removal.
    let (code, out, err) = d.condo(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs,
        "-v",
        "data:/data",
        "sh",
        "-c",
        "echo kept > /data/note && cat /data/note",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "kept");
    assert_eq!(volume_names(&d), vec!["data"]);
    let v = d.get("/v1/volumes/data").json();
    assert_eq!(v["tenant"], "default");
    assert!(v["size"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["used_by"], json!([]));
    let dir = v["mountpoint"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/note")).unwrap(),
        "kept\n"
    );

    // Another container sees it, read-only when asked.
    let (code, out, err) = d.condo(&[
        "run",
        "--name",
        "reader",
        "--rootfs",
        &rootfs,
        "-v",
        "data:/d:ro",
        "sh",
        "-c",
        "cat /d/note; echo x > /d/other || echo refused",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kept") && out.contains("refused"), "{out}");
    assert!(!std::path::Path::new(&format!("{dir}/other")).exists());

    // In use by a stopped container: no without force.
    let a = d.req("DELETE", "/v1/volumes/data", None);
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.json()["message"].as_str().unwrap().contains("reader"));
    assert_eq!(
        d.get("/v1/volumes/data").json()["used_by"],
        json!(["reader"])
    );
    // In use by a running one: no, even with force.
    let id = d.run(
        "runner",
        &["sleep", "1000"],
        json!({"volumes": ["data:/data"]}),
    );
    let a = d.req("DELETE", "/v1/volumes/data?force=true", None);
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.json()["message"].as_str().unwrap().contains("runner"));
    let a = d.req("DELETE", &format!("/v1/containers/{id}?force=true"), None);
    assert_eq!(a.status, 204, "{}", a.body);
    // Prune keeps what a container mounts, removes what none does.
    let a = d.post(
        "/v1/volumes",
        &json!({"name": "spare", "labels": {"k": "v"}}).to_string(),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["labels"]["k"], "v");
    let a = d.post("/v1/volumes", &json!({"name": "spare"}).to_string());
    assert_eq!(a.status, 409, "{}", a.body);
    let (code, out, err) = d.condo(&["volume", "prune", "-f", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["volumes"], json!(["spare"]), "{out}");
    assert_eq!(volume_names(&d), vec!["data"]);

    // With force, a stopped user does not hold it; starting that user makes it anew, empty.
    let (code, out, err) = d.condo(&["volume", "rm", "-f", "data"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "data");
    assert!(!std::path::Path::new(&dir).exists(), "its data is gone");
    let (code, _, err) = d.condo(&["start", "reader"]);
    assert_eq!(code, 0, "{err}");
    d.wait_state("reader", "stopped", 10);
    assert_eq!(volume_names(&d), vec!["data"]);
    let v = d.get("/v1/volumes/data").json();
    assert_ne!(v["mountpoint"].as_str().unwrap(), dir);

    // The CLI: create, ls (table, quiet, json), inspect, rm of an absent one (exit 3).
    let (code, out, err) = d.condo(&["volume", "create", "made", "-l", "team=a"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "made");
    let (code, out, _) = d.condo(&["volume", "ls"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("NAME") && out.contains("made") && out.contains("reader"),
        "{out}"
    );
    let (_, out, _) = d.condo(&["volume", "ls", "-q"]);
    assert_eq!(out, "data\nmade\n");
    let (_, out, _) = d.condo(&["volume", "ls", "--output", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (code, out, _) = d.condo(&["volume", "inspect", "made"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["labels"]["team"], "a");
    let (code, _, err) = d.condo(&["volume", "rm", "nosuch"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nosuch"), "{err}");
    let (code, _, err) = d.condo(&["volume", "create", "bad/name"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad/name"), "{err}");

    // Every change was an event of kind volume.
    let events = d.get("/v1/events?since=0&follow=false").body;
    let kinds: Vec<(String, String)> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "volume")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["attributes"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("create", "data"),
        ("create", "spare"),
        ("delete", "spare"),
        ("delete", "data"),
        ("create", "data"),
        ("create", "made"),
    ]
    .iter()
    .map(|(a, n)| (a.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds, want);

    // Across a crash of the daemon: rows and data stay; a directory no row points at goes.
    let made = d.get("/v1/volumes/made").json();
    let made_dir = made["mountpoint"].as_str().unwrap().to_string();
    std::fs::write(format!("{made_dir}/f"), "x").unwrap();
    let orphan = d.root.join("volumes/0123456789abcdef/data");
    std::fs::create_dir_all(&orphan).unwrap();
    d.kill9();
    d.spawn();
    assert_eq!(volume_names(&d), vec!["data", "made"]);
    assert_eq!(
        std::fs::read_to_string(format!("{made_dir}/f")).unwrap(),
        "x"
    );
    assert!(
        !orphan.exists(),
        "an orphan volume directory survived the restart"
    );
}

#[test]
fn each_tenant_has_its_own_volumes() {
    let d = Daemon::start();
    tenant(&d, "acme", json!({}));
    let (_, owner) = user(&d, None, "acme", "ann", "tenant-owner");
    let (_, reader) = user(&d, None, "acme", "rob", "read-only");
    let as_acme = |m: &str, p: &str, b: Option<&str>, t: &str| call(&d, Some(t), m, p, b, false);
    import_image(&d);

    // The same name in two tenants is two volumes; each tenant sees its own.
    let a = d.post("/v1/volumes", &json!({"name": "data"}).to_string());
    assert_eq!(a.status, 201, "{}", a.body);
    let a = d.post("/v1/volumes", &json!({"name": "admins-only"}).to_string());
    assert_eq!(a.status, 201, "{}", a.body);
    let a = as_acme("POST", "/v1/volumes", Some(r#"{"name": "data"}"#), &owner);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["tenant"], "acme");
    assert_eq!(
        a.json()["mountpoint"],
        Value::Null,
        "a host path shown to a tenant"
    );
    let a = as_acme("GET", "/v1/volumes", None, &owner);
    let names: Vec<Value> = a
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("data")]);
    let a = as_acme("GET", "/v1/volumes/admins-only", None, &owner);
    assert_eq!(a.status, 404, "{}", a.body);
    let a = as_acme("DELETE", "/v1/volumes/admins-only", None, &owner);
    assert_eq!(a.status, 404, "{}", a.body);
    let all = d.get("/v1/volumes").json();
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let acme_dir = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["tenant"] == "acme")
        .and_then(|v| v["mountpoint"].as_str())
        .expect("the admin sees where a volume lives")
        .to_string();

    // A tenant's container mounts the tenant's volume; a host path is not for it.
    let a = as_acme(
        "POST",
        "/v1/containers",
        Some(&json!({"name": "w", "image": "bb:1", "command": ["sh", "-c", "echo acme > /d/who"], "volumes": ["data:/d"]}).to_string()),
        &owner,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let a = as_acme("POST", "/v1/containers/w/start", None, &owner);
    assert_eq!(a.status, 200, "{}", a.body);
    d.wait_state("w", "stopped", 10);
    assert_eq!(
        std::fs::read_to_string(format!("{acme_dir}/who")).unwrap(),
        "acme\n"
    );
    let a = as_acme(
        "POST",
        "/v1/containers",
        Some(&json!({"image": "bb:1", "volumes": ["/etc:/host-etc"]}).to_string()),
        &owner,
    );
    assert_eq!(a.status, 403, "{}", a.body);
    // A reader may neither make, remove nor prune volumes.
    let a = as_acme("POST", "/v1/volumes", Some(r#"{"name": "x"}"#), &reader);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = as_acme("POST", "/v1/volumes/prune", None, &reader);
    assert_eq!(a.status, 403, "{}", a.body);
    let a = as_acme("DELETE", "/v1/volumes/data", None, &reader);
    assert_eq!(a.status, 403, "{}", a.body);
    // Pulling and pruning images is the admin's.
    let a = as_acme("POST", "/v1/images/prune", None, &owner);
    assert_eq!(a.status, 403, "{}", a.body);

    // A tenant's prune touches only its own volumes.
    let a = as_acme("POST", "/v1/volumes", Some(r#"{"name": "spare"}"#), &owner);
    assert_eq!(a.status, 201, "{}", a.body);
    let a = as_acme("POST", "/v1/volumes/prune", None, &owner);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["volumes"], json!(["spare"]));
    assert_eq!(d.get("/v1/volumes").json().as_array().unwrap().len(), 3);
}
