//! A template's instance used the way a customer uses it: built, created with a parameter on a
//! network, and reached through a published port from the host side. condod runs inside a
//! network namespace this test makes.

mod common;
mod netns;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;

fn get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: site\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn the_busybox_template_answers_on_a_published_port() {
    netns::private_netns();
    let d = Daemon::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/busybox");
    let (code, _, err) = d.condo(&["template", "build", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "build: {err}");
    // The paths that belong to each instance are shown with the template.
    let (code, out, err) = d.condo(&["template", "show", "busybox"]);
    assert_eq!(code, 0, "show: {err}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["volumes"], serde_json::json!(["/var/www/uploads"]), "{t}");
    let (code, out, err) = d.condo(&["templates"]);
    assert_eq!(code, 0, "templates: {err}");
    assert!(
        out.contains("VOLUMES") && out.contains("/var/www/uploads"),
        "{out}"
    );
    let (code, _, err) = d.condo(&["network", "create", "web"]);
    assert_eq!(code, 0, "network create: {err}");
    let (code, _, err) = d.condo(&[
        "run",
        "-d",
        "--name",
        "site",
        "--template",
        "busybox",
        "--network",
        "web",
        "-p",
        "greeting=Welcome to Acme",
        "-p",
        "127.0.0.1:8080:80",
    ]);
    assert_eq!(code, 0, "run: {err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        match get("127.0.0.1:8080") {
            Ok(p) if p.contains(" 200 ") => break p,
            r => assert!(
                Instant::now() < deadline,
                "no page on 127.0.0.1:8080: {r:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains("Welcome to Acme"), "{page}");
    for args in [&["rm", "-f", "site"][..], &["network", "rm", "web"]] {
        let (code, _, err) = d.condo(args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    assert!(get("127.0.0.1:8080").is_err(), "the port still answers");
}

/// GET / with `host` as the Host header; the whole answer.
fn get_as(addr: &str, host: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Polls `probe` every two seconds until it returns Ok, for at most `secs`; the failure names
/// `what` and shows the last attempt, the containers and their last output.
fn wait_for<T>(
    d: &Daemon,
    what: &str,
    secs: u64,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                let (_, ps, _) = d.condo(&["ps", "-a"]);
                let (_, names, _) = d.condo(&["ps", "-a", "-q"]);
                let mut logs = String::new();
                for n in names.split_whitespace() {
                    let (_, out, err) = d.condo(&["logs", "--tail", "30", n]);
                    logs.push_str(&format!("--- {n}\n{out}{err}"));
                }
                panic!("{what} after {secs} s: {last}\n{ps}\n{logs}")
            }
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// Builds template `name` of the library through the CLI; the seconds the build reported.
fn build(d: &Daemon, name: &str) -> f64 {
    let (code, _, err) = d.condo(&["template", "build", name]);
    assert_eq!(code, 0, "build {name}: {err}");
    let done = err
        .lines()
        .find(|l| l.starts_with("built "))
        .unwrap_or_else(|| panic!("build {name}: no summary: {err}"));
    eprintln!("{done}");
    done.split(" in ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("build {name}: unreadable summary: {done}"))
}

/// The Debian-based templates used the way a customer uses them: built by condod from the
/// library (debootstrap and apt from the host's mirror), then created through the CLI with
/// parameters and published ports, and used from the host side: the nginx page and the
/// WordPress home page carry the site name, and PostgreSQL answers a SQL query (with the
/// host's `psql`) with the password given as a parameter.
///
/// The builds need the mirror, so condod first runs in the host's network namespace, where it
/// makes no network of its own (a build step uses the daemon's network); then it is restarted,
/// on the same state, inside a network namespace this test makes, where its bridge, rules and
/// published ports live. Slow (downloads about 700 MB): run with
/// `cargo test -p condod -p condo -p condo-monitor --test templates -- --ignored`
/// (needs debootstrap, the host's Debian mirror in its apt sources, and psql).
#[test]
#[ignore = "downloads Debian from the mirror: minutes"]
fn the_debian_templates_answer_on_published_ports() {
    if condo_template::base::host_mirror().is_none() || !common::have("debootstrap") {
        eprintln!("SKIPPED: no Debian mirror in the host's apt sources or no debootstrap");
        return;
    }
    assert!(
        common::have("psql"),
        "this test queries PostgreSQL with the host's psql: install postgresql-client"
    );
    let t0 = Instant::now();
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let library = library.canonicalize().unwrap();
    let mut d = Daemon::start_with(&["--templates", library.to_str().unwrap()]);
    let mut took = Vec::new();
    for t in ["debian", "nginx", "postgres", "wordpress"] {
        took.push((t, build(&d, t)));
    }
    // An unchanged template is all cached.
    let (code, _, err) = d.condo(&["template", "build", "wordpress"]);
    assert_eq!(code, 0, "rebuild: {err}");
    let counts: Vec<&str> = err
        .rsplit_once('(')
        .map(|(_, c)| {
            c.split([' ', ','])
                .filter(|w| w.parse::<u32>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(counts.len() == 2 && counts[0] == counts[1], "{err}");
    let built = t0.elapsed();

    d.kill9();
    netns::private_netns();
    d.spawn();
    let (code, _, err) = d.condo(&["network", "create", "web"]);
    assert_eq!(code, 0, "network create: {err}");
    let run = |name: &str, template: &str, args: &[&str]| {
        let mut a = vec![
            "run",
            "-d",
            "--name",
            name,
            "--template",
            template,
            "--network",
            "web",
        ];
        for x in args {
            a.extend(["-p", x]);
        }
        let (code, _, err) = d.condo(&a);
        assert_eq!(code, 0, "run {name}: {err}");
    };
    // A bad parameter is refused before anything is made.
    let (code, _, err) = d.condo(&["run", "-d", "--name", "db", "--template", "postgres"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("missing required parameter \"db_password\""),
        "{err}"
    );
    run("site", "nginx", &["site_name=Acme Static", "18080:80"]);
    run(
        "db",
        "postgres",
        &["db_password=s3cret-x", "db_name=shop", "15432:5432"],
    );
    run(
        "blog",
        "wordpress",
        &[
            "site_name=Acme Blog",
            "admin_password=pw-123456",
            "site_url=http://127.0.0.1:18081",
            "18081:80",
        ],
    );

    let page = wait_for(&d, "no nginx page on 127.0.0.1:18080", 60, || match get_as(
        "127.0.0.1:18080",
        "127.0.0.1:18080",
    ) {
        Ok(p) if p.contains(" 200 ") => Ok(p),
        r => Err(format!("{r:?}")),
    });
    assert!(page.contains("<h1>Acme Static</h1>"), "{page}");
    // nginx's access log reaches the instance's log through /dev/stdout, opened by name.
    wait_for(&d, "no access log line in `condo logs site`", 10, || {
        let (_, out, err) = d.condo(&["logs", "site"]);
        if out.contains("\"GET / HTTP/1.") {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });

    let answer = wait_for(
        &d,
        "postgres did not answer on 127.0.0.1:15432",
        120,
        || {
            let o = std::process::Command::new("psql")
                .env("PGPASSWORD", "s3cret-x")
                .env("PGCONNECT_TIMEOUT", "5")
                .args(["-h", "127.0.0.1", "-p", "15432", "-U", "app", "-d", "shop"])
                .args(["-tAc", "select 40 + 2"])
                .output()
                .map_err(|e| e.to_string())?;
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stdout).into_owned())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).into_owned())
            }
        },
    );
    assert_eq!(answer.trim(), "42");
    // The password is the one given: another is refused.
    let o = std::process::Command::new("psql")
        .env("PGPASSWORD", "wrong")
        .args(["-h", "127.0.0.1", "-p", "15432", "-U", "app", "-d", "shop"])
        .args(["-tAc", "select 1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let page = wait_for(
        &d,
        "no WordPress site on 127.0.0.1:18081",
        300,
        || match get_as("127.0.0.1:18081", "127.0.0.1:18081") {
            Ok(p) if p.contains(" 200 ") && p.contains("Acme Blog") => Ok(p),
            r => Err(format!("{r:?}")),
        },
    );
    assert!(page.contains("<title>Acme Blog"), "{page}");
    let used = t0.elapsed() - built;

    for args in [
        &["rm", "-f", "site", "db", "blog"][..],
        &["network", "rm", "web"],
    ] {
        let (code, _, err) = d.condo(args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    for port in [18080, 18081, 15432] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers"
        );
    }
    eprintln!(
        "builds {took:?}; all built in {:.0} s, created and answering in {:.0} s",
        built.as_secs_f64(),
        used.as_secs_f64()
    );
}
