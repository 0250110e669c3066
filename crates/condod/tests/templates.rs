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
