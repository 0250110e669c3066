//! Networks end to end: condod runs inside a network namespace this test makes, and its
//! containers talk over real TCP. Needs root.

mod common;
mod netns;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Daemon;
use netns::private_netns;
use serde_json::{json, Value};

fn links() -> Vec<String> {
    let mut l = condo_net::netlink::Netlink::open()
        .unwrap()
        .link_names()
        .unwrap();
    l.sort();
    l
}

fn nft_tables() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds the applets this test uses to the daemon's busybox rootfs.
fn applets(d: &Daemon) {
    for a in ["nc", "nslookup", "wc"] {
        let l = d.rootfs.join("bin").join(a);
        if !l.exists() {
            std::os::unix::fs::symlink("busybox", &l).unwrap();
        }
    }
}

fn exec(d: &Daemon, id: &str, script: &str) -> Value {
    let body = json!({"command": ["sh", "-c", script]}).to_string();
    let a = d.post(&format!("/v1/containers/{id}/exec"), &body);
    assert_eq!(a.status, 200, "exec {script}: {}", a.body);
    a.json()
}

fn ip_of(d: &Daemon, id: &str) -> String {
    let v = d.inspect(id);
    v["endpoint"]["ipv4"]
        .as_str()
        .unwrap_or_else(|| panic!("no endpoint: {v}"))
        .to_string()
}

fn stats(d: &Daemon, id: &str) -> Value {
    let a = d.get(&format!("/v1/containers/{id}/stats"));
    assert_eq!(a.status, 200, "stats: {}", a.body);
    a.json()
}

/// Sends `ping` to a published port from the host side and expects it back.
fn host_roundtrip(addr: &str) -> std::io::Result<()> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(3)))?;
    c.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf)?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

/// Waits for the published echo server to answer (the container may still be starting).
fn wait_published(d: &Daemon, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = host_roundtrip(addr) {
        assert!(
            Instant::now() < deadline,
            "{addr} never answered: {e}\n{}\n{}",
            d.get("/v1/containers?all=true").body,
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ECHO: &[&str] = &["nc", "-ll", "-p", "8080", "-e", "cat"];

#[test]
fn containers_on_networks_talk_publish_and_leave_nothing() {
    private_netns();
    let mut d = Daemon::start();
    applets(&d);

    // Bad input is refused by field, and leaves nothing.
    let a = d.post("/v1/networks", r#"{"name":"bad","subnet":"10.97.0.0/33"}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("subnet"), "{}", a.body);
    let body = json!({"rootfs": d.rootfs, "network": "nope", "command": ["true"]});
    let a = d.post("/v1/containers", &body.to_string());
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("network"), "{}", a.body);
    let body = json!({"rootfs": d.rootfs, "command": ["true"],
        "ports": [{"host_port": 18080, "container_port": 8080}]});
    let a = d.post("/v1/containers", &body.to_string());
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("ports"), "{}", a.body);

    let a = d.post(
        "/v1/networks",
        r#"{"name":"front","subnet":"10.97.0.0/24"}"#,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["gateway"], "10.97.0.1");
    let a = d.post("/v1/networks", r#"{"name":"back"}"#);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["subnet"], "10.89.0.0/24");
    let a = d.post(
        "/v1/networks",
        r#"{"name":"front","subnet":"10.98.0.0/24"}"#,
    );
    assert_eq!(a.status, 409, "{}", a.body);
    let low = json!({"rootfs": d.rootfs, "network": "front", "command": ["true"],
        "ports": [{"host_port": 80, "container_port": 8080}]});
    let a = d.post("/v1/containers", &low.to_string());
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("host_port"), "{}", a.body);

    let web = d.run(
        "web",
        ECHO,
        json!({"network": "front", "ports": ["18080:8080"]}),
    );
    let client = d.run("client", &["sleep", "1000"], json!({"network": "front"}));
    let other = d.run("other", &["sleep", "1000"], json!({"network": "back"}));
    let alone = d.run("alone", &["sleep", "1000"], json!({}));
    let web_ip = ip_of(&d, &web);
    assert!(web_ip.starts_with("10.97.0."), "{web_ip}");
    assert!(ip_of(&d, &other).starts_with("10.89.0."));
    assert!(d.inspect(&alone)["endpoint"].is_null());

    // A published port answers from the host side, on 127.0.0.1 and on the gateway.
    wait_published(&d, "127.0.0.1:18080");
    host_roundtrip("10.97.0.1:18080").unwrap();

    // Two containers on one network talk over TCP, by address and by name.
    let r = exec(&d, &client, &format!("echo hello | nc -w 2 {web_ip} 8080"));
    assert_eq!(r["stdout"], "hello\n", "{r}");
    let r = exec(&d, &client, "echo byname | nc -w 2 web 8080");
    assert_eq!(r["stdout"], "byname\n", "{r}");
    let hosts = exec(&d, &client, "cat /etc/hosts; cat /etc/resolv.conf");
    assert!(
        hosts["stdout"]
            .as_str()
            .unwrap()
            .contains("nameserver 10.97.0.1"),
        "{hosts}"
    );

    // Containers on another network, or on none, cannot reach it.
    for (who, id) in [("other", &other), ("alone", &alone)] {
        let r = exec(&d, id, &format!("echo no | nc -w 2 {web_ip} 8080"));
        assert_ne!(r["stdout"], "no\n", "{who} reached web: {r}");
    }

    // Stats count the traffic: 200000 bytes sent by the client and echoed back.
    let before = stats(&d, &client);
    let r = exec(
        &d,
        &client,
        &format!("head -c 200000 /dev/zero | nc -w 2 {web_ip} 8080 | wc -c"),
    );
    assert_eq!(r["stdout"].as_str().unwrap().trim(), "200000", "{r}");
    let after = stats(&d, &client);
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    assert!(delta("net_tx_bytes") >= 200_000, "{before} {after}");
    assert!(delta("net_rx_bytes") >= 200_000, "{before} {after}");
    assert!(delta("net_tx_bytes") < 240_000, "{before} {after}");

    // Rate limits change live.
    let a = d.post(
        &format!("/v1/containers/{client}/update"),
        r#"{"rate":{"ingress_bps":2000000,"egress_bps":2000000}}"#,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["config"]["rate"]["egress_bps"], 2_000_000);
    let veth = d.inspect(&client)["endpoint"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    let ifb = format!("ci{}", veth.trim_start_matches("cv"));
    assert!(links().contains(&ifb), "{:?}", links());
    let a = d.post(&format!("/v1/containers/{client}/update"), r#"{"rate":{}}"#);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!links().contains(&ifb), "{:?}", links());

    // After a daemon restart, networks and leases are the same and still work.
    let nets_before = d.get("/v1/networks").json();
    d.kill9();
    d.spawn();
    assert_eq!(d.get("/v1/networks").json(), nets_before);
    assert_eq!(ip_of(&d, &web), web_ip);
    host_roundtrip("127.0.0.1:18080").unwrap();
    let r = exec(&d, &client, "echo again | nc -w 2 web 8080");
    assert_eq!(r["stdout"], "again\n", "{r}");

    // A stopped container gives its address back; started again, it has one and works.
    let a = d.post(&format!("/v1/containers/{web}/stop?timeout=1"), "");
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(host_roundtrip("127.0.0.1:18080").is_err());
    assert_eq!(
        d.get("/v1/networks/front").json()["endpoints"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let a = d.post(&format!("/v1/containers/{web}/start"), "");
    assert_eq!(a.status, 200, "{}", a.body);
    wait_published(&d, "127.0.0.1:18080");

    // The same through the CLI.
    let (code, out, err) = d.condo(&["network", "create", "cli", "--subnet", "10.96.0.0/24"]);
    assert_eq!((code, out.trim()), (0, "cli"), "{err}");
    let (_, out, _) = d.condo(&["network", "ls"]);
    assert!(out.contains("cli") && out.contains("10.96.0.0/24"), "{out}");
    let rootfs = d.rootfs.display().to_string();
    let mut args = vec!["run", "-d", "--name", "c1", "--network", "cli"];
    args.extend([
        "-p",
        "127.0.0.1:18090:8080",
        "--rate",
        "10mbit",
        "--rootfs",
        &rootfs,
    ]);
    args.extend(ECHO);
    let (code, _, err) = d.condo(&args);
    assert_eq!(code, 0, "{err}");
    wait_published(&d, "127.0.0.1:18090");
    assert!(
        host_roundtrip("10.96.0.1:18090").is_err(),
        "published on 127.0.0.1 only"
    );
    assert_eq!(d.inspect("c1")["config"]["rate"]["ingress_bps"], 10_000_000);
    let (code, _, err) = d.condo(&["update", "--rate-out", "5mbit", "c1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.inspect("c1")["config"]["rate"]["egress_bps"], 5_000_000);
    assert!(d.inspect("c1")["config"]["rate"]["ingress_bps"].is_null());
    let (code, out, err) = d.condo(&["stats", "--no-stream", "c1"]);
    assert!(code == 0 && out.contains("NET I/O"), "{out}{err}");
    let (code, _, err) = d.condo(&["network", "rm", "cli"]);
    assert_eq!(code, 4, "in use: {err}");
    assert!(d.condo(&["rm", "-f", "c1"]).0 == 0);
    assert_eq!(d.condo(&["network", "rm", "cli"]).0, 0);
    assert_eq!(d.condo(&["network", "inspect", "cli"]).0, 3);

    // A network in use cannot go; once its containers are gone it can, with everything it had.
    let a = d.req("DELETE", "/v1/networks/front", None);
    assert_eq!(a.status, 409, "{}", a.body);
    for id in [&web, &client, &other, &alone] {
        let a = d.req("DELETE", &format!("/v1/containers/{id}?force=true"), None);
        assert_eq!(a.status, 204, "{}", a.body);
    }
    for n in ["front", "back"] {
        let a = d.req("DELETE", &format!("/v1/networks/{n}"), None);
        assert_eq!(a.status, 204, "{}", a.body);
    }
    // Released veths go with their namespaces, in the kernel's own time.
    let deadline = Instant::now() + Duration::from_secs(5);
    while links() != vec!["lo".to_string()] {
        assert!(Instant::now() < deadline, "left behind: {:?}", links());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!nft_tables().contains("condo"), "{}", nft_tables());
    let state = d.root.join("network/networks");
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(d.root.join("netns")).unwrap().count(), 0);
    assert_eq!(d.get("/v1/networks").json(), json!([]));
}

#[test]
fn networks_belong_to_tenants_and_follow_their_quota() {
    use common::tenancy::{get, import_image, post, refused, tenant, user};
    private_netns();
    let d = Daemon::start();
    import_image(&d);
    tenant(&d, "gamma", json!({"networks": 1, "bandwidth": 5_000_000}));
    let (_, gina) = user(&d, None, "gamma", "gina", "tenant-owner");
    let (_, oli) = user(&d, Some(&gina), "gamma", "oli", "operator");

    let a = post(&d, Some(&oli), "/v1/networks", r#"{"name":"g0"}"#);
    refused(&a, 403, "code", "forbidden");
    let a = post(&d, Some(&gina), "/v1/networks", r#"{"name":"g1"}"#);
    assert_eq!(
        (a.status, a.json()["tenant"].clone()),
        (201, json!("gamma")),
        "{}",
        a.body
    );
    let a = post(&d, Some(&gina), "/v1/networks", r#"{"name":"g2"}"#);
    refused(&a, 409, "code", "quota_exceeded");
    assert_eq!(get(&d, Some(&gina), "/v1/networks/g1").status, 200);
    let t = get(&d, Some(&gina), "/v1/tenants/gamma").json();
    assert_eq!(t["usage"]["networks"], 1, "{t}");

    // Another tenant's network cannot be seen or joined.
    assert_eq!(d.post("/v1/networks", r#"{"name":"adm"}"#).status, 201);
    let names: Vec<Value> = get(&d, Some(&gina), "/v1/networks")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("g1")]);
    assert_eq!(get(&d, Some(&gina), "/v1/networks/adm").status, 404);
    let body = json!({"image": "bb:1", "network": "adm", "command": ["sleep", "100"]});
    let a = post(&d, Some(&gina), "/v1/containers", &body.to_string());
    refused(&a, 400, "field", "network");

    // The bandwidth quota caps each container's rate, and is its rate when it names none.
    let body = json!({"image": "bb:1", "network": "g1", "command": ["sleep", "100"],
        "rate": {"ingress_bps": 10_000_000}});
    let a = post(&d, Some(&gina), "/v1/containers", &body.to_string());
    refused(&a, 400, "field", "rate");
    let body = json!({"name": "g", "image": "bb:1", "network": "g1", "command": ["sleep", "100"]});
    let a = post(&d, Some(&gina), "/v1/containers", &body.to_string());
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_string();
    let a = post(&d, Some(&gina), &format!("/v1/containers/{id}/start"), "");
    assert_eq!(a.status, 200, "{}", a.body);
    let veth = d.inspect(&id)["endpoint"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(links().contains(&format!("ci{}", veth.trim_start_matches("cv"))));

    let a = d.req("DELETE", "/v1/tenants/gamma", None);
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("1 networks"), "{}", a.body);
    assert_eq!(
        d.req("DELETE", &format!("/v1/containers/{id}?force=true"), None)
            .status,
        204
    );
    for n in ["g1", "adm"] {
        assert_eq!(
            d.req("DELETE", &format!("/v1/networks/{n}"), None).status,
            204
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while links() != vec!["lo".to_string()] {
        assert!(Instant::now() < deadline, "left behind: {:?}", links());
        std::thread::sleep(Duration::from_millis(20));
    }
}
