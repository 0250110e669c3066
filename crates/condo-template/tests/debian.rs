//! The Debian-based templates end to end (debootstrap from the host's mirror, then apt): build,
//! instantiate with parameters, and use each through its port inside the instance's network
//! namespace. Slow (downloads about 700 MB; 326 s on a shared 2-core box: debootstrap 44 s,
//! nginx 11 s, postgres 59 s, wordpress 128 s): run with
//! `cargo test -p condo-template --test debian -- --ignored`.

mod common;

use common::{Env, Running};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
#[ignore = "downloads Debian from the mirror: minutes"]
fn debian_nginx_postgres_wordpress() {
    if condo_template::base::host_mirror().is_none() || which("debootstrap").is_none() {
        eprintln!("SKIPPED: no Debian mirror in the host's apt sources or no debootstrap");
        return;
    }
    let env = Env::new();
    let t0 = Instant::now();
    let deb = env.build("debian");
    eprintln!("debian: cold {:.1}s", deb.seconds);
    let again = env.build("debian");
    eprintln!(
        "debian: warm {:.3}s ({} of {} cached)",
        again.seconds, again.cached, again.steps
    );
    assert_eq!(again.cached, again.steps);
    assert!(again.seconds <= 1.0);

    // nginx: the site name rendered into the page.
    let ng = env.build("nginx");
    eprintln!(
        "nginx: {:.1}s, {} of {} steps cached",
        ng.seconds, ng.cached, ng.steps
    );
    let inst = condo_template::instantiate(
        &env.images,
        &env.instances,
        &ng.meta,
        "site",
        &params(&[("site_name", "Acme Static")]),
        None,
        env.tmp.path(),
    )
    .unwrap();
    let run = Running::start(&env, &inst);
    run.lo_up();
    let page = run.http_get(80, "/");
    assert!(
        page.contains(" 200 ") && page.contains("<h1>Acme Static</h1>"),
        "{page}"
    );
    let (code, took) = run.stop();
    eprintln!("nginx: stopped with {code} in {:?}", took);
    assert_eq!(code, 0);

    // postgres: a password-authenticated SQL query over TCP.
    let pg = env.build("postgres");
    eprintln!("postgres: {:.1}s", pg.seconds);
    let e = condo_template::instantiate(
        &env.images,
        &env.instances,
        &pg.meta,
        "db",
        &BTreeMap::new(),
        None,
        env.tmp.path(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("missing required parameter \"db_password\""),
        "{e}"
    );
    let inst = condo_template::instantiate(
        &env.images,
        &env.instances,
        &pg.meta,
        "db",
        &params(&[("db_password", "s3cret'x"), ("db_name", "shop")]),
        None,
        env.tmp.path(),
    )
    .unwrap();
    let run = Running::start(&env, &inst);
    run.lo_up();
    let deadline = Instant::now() + Duration::from_secs(90);
    let answer = loop {
        let (code, out) = run.exec(
            &env,
            &[
                "env",
                "PGPASSWORD=s3cret'x",
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "app",
                "-d",
                "shop",
                "-tAc",
                "select 40 + 2",
            ],
        );
        if code == 0 {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "postgres never answered: {out}\n{}",
            run.output()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(answer.trim(), "42");
    let (code, _) = run.stop();
    assert_eq!(code, 0);

    // wordpress: the site installed at first start carries its name.
    let wp = env.build("wordpress");
    eprintln!("wordpress: {:.1}s", wp.seconds);
    let inst = condo_template::instantiate(
        &env.images,
        &env.instances,
        &wp.meta,
        "blog",
        &params(&[("site_name", "Acme Blog"), ("admin_password", "pw-123456")]),
        None,
        env.tmp.path(),
    )
    .unwrap();
    let run = Running::start(&env, &inst);
    run.lo_up();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let page = run.http_get(80, "/");
        if page.contains("Acme Blog") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no Acme Blog: {page}\n{}",
            run.output()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let (code, took) = run.stop();
    eprintln!(
        "wordpress: stopped with {code} in {:?}; whole test {:.0}s",
        took,
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(code, 0);
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.exists())
    })
}
