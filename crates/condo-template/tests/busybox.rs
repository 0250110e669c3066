//! The busybox template end to end: cold build, cached rebuild, instantiation with a parameter,
//! and its service answering HTTP inside the instance's own network namespace.

mod common;

use common::{Env, Running};
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn busybox_builds_caches_instantiates_and_serves() {
    let env = Env::new();
    let cold = env.build("busybox");
    eprintln!(
        "cold build: {:.2}s, {} steps, {} cached",
        cold.seconds, cold.steps, cold.cached
    );
    assert_eq!(cold.cached, 0);
    let warm = env.build("busybox");
    eprintln!(
        "warm build: {:.3}s, {} steps, {} cached",
        warm.seconds, warm.steps, warm.cached
    );
    assert_eq!(warm.cached, warm.steps, "every step comes from the cache");
    assert!(
        warm.seconds <= 1.0,
        "unchanged rebuild took {:.3}s",
        warm.seconds
    );
    assert_eq!(warm.meta.top_layer, cold.meta.top_layer);
    assert_eq!(warm.meta.manifest.hex().len(), 64);

    // The image record's layers are the committed snapshots.
    let rec = env.images.get("busybox:1").unwrap();
    let (_, m) = env.images.manifest(&rec.target).unwrap();
    assert_eq!(m.layers.len(), cold.steps);
    env.snap.stat(&cold.meta.top_layer).unwrap();
    let meta = env.builder.metadata().get("busybox").unwrap();
    assert_eq!(
        meta.parameters["greeting"].default.as_deref(),
        Some("Hello from Condo")
    );
    assert!(meta.services.contains_key("web"));

    // A missing required value or a mistyped one is refused before anything is created.
    let mut bad = BTreeMap::new();
    bad.insert("port".to_string(), "eighty".to_string());
    let e = condo_template::instantiate(
        &env.images,
        &env.instances,
        &meta,
        "bad",
        &bad,
        None,
        env.tmp.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("port") && e.contains("not an integer"), "{e}");
    assert!(env.instances.get("bad").is_err());

    let mut params = BTreeMap::new();
    params.insert("greeting".to_string(), "Welcome, Acme & Co".to_string());
    params.insert("port".to_string(), "8080".to_string());
    let t0 = std::time::Instant::now();
    let inst = condo_template::instantiate(
        &env.images,
        &env.instances,
        &meta,
        "acme",
        &params,
        None,
        env.tmp.path(),
    )
    .unwrap();
    eprintln!("instantiate: {:.1} ms", t0.elapsed().as_secs_f64() * 1000.0);

    let run = Running::start(&env, &inst);
    let page = run.http_get(8080, "/");
    assert!(
        page.starts_with("HTTP/1.") && page.contains(" 200 "),
        "{page}"
    );
    assert!(page.contains("<h1>Welcome, Acme & Co</h1>"), "{page}");
    assert!(page.contains("port 8080"), "{page}");

    // The service is restarted when it dies.
    let init = run.init_pid();
    let httpd = find_child(init, "httpd").expect("httpd runs");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(httpd).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let again = run.http_get(8080, "/");
    assert!(again.contains("Welcome, Acme"), "{again}");
    assert_ne!(find_child(init, "httpd"), Some(httpd));

    let out_before = run.output();
    let (code, took) = run.stop();
    eprintln!(
        "clean shutdown: exit {code} in {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    eprintln!("{out_before}");
    assert_eq!(code, 0, "init exits 0 after SIGTERM");
    assert!(took < Duration::from_secs(5));

    // The first start ran once and left its mark in the instance, not in the template.
    let upper = env.instances.upper_path("acme").unwrap();
    assert!(upper.join("var/log/first-start").exists());
    assert!(upper.join("etc/condo/params.env").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(upper.join("etc/condo/params.env"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    env.instances.delete("acme").unwrap();
}

/// A descendant of `pid` whose command name is `comm`.
fn find_child(pid: i32, comm: &str) -> Option<i32> {
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm) {
            return Some(p);
        }
        let kids =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(
            kids.split_whitespace()
                .filter_map(|k| k.parse::<i32>().ok()),
        );
    }
    None
}
