//! Real TCP and UDP between containers (network namespaces made here), published ports,
//! isolation and DNS. Needs root.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use condo_net::dns::message;
use condo_net::{PortSpec, Protocol};

fn tcp_echo_server(port: u16) -> impl FnOnce() + Send + 'static {
    tcp_echo_server_for(port, 8)
}

/// An echo server that ends after `n` connections.
fn tcp_echo_server_for(port: u16, n: usize) -> impl FnOnce() + Send + 'static {
    move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        for c in l.incoming().take(n) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    }
}

fn udp_echo_server(port: u16) -> impl FnOnce() + Send + 'static {
    move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 2048];
        for _ in 0..8 {
            let Ok((n, peer)) = s.recv_from(&mut buf) else {
                break;
            };
            let _ = s.send_to(&buf[..n], peer);
        }
    }
}

fn tcp_roundtrip(addr: SocketAddr) -> std::io::Result<()> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(700))?;
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf)?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

/// A datagram there and back; sent again a few times, as UDP promises no delivery (and the
/// server may still be binding its socket).
fn udp_roundtrip(addr: SocketAddr) -> std::io::Result<()> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 16];
    let mut last = None;
    for _ in 0..5 {
        s.send_to(b"pong", addr)?;
        match s.recv_from(&mut buf) {
            Ok((n, _)) => {
                assert_eq!(&buf[..n], b"pong");
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::TimedOut.into()))
}

fn wait_listening(ns: &std::os::fd::OwnedFd, addr: SocketAddr) {
    in_ns(ns, move || {
        for _ in 0..100 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
fn containers_talk_publish_ports_and_resolve_names() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        let info = nets.create_network(&spec("front", "10.77.0.0/24")).unwrap();
        let (n1, n2) = (new_container_ns(), new_container_ns());
        let a1 = nets.attach("front", &req("web", &n1)).unwrap();
        let a2 = nets.attach("front", &req("client", &n2)).unwrap();
        assert_eq!(a1.ipv4.to_string(), "10.77.0.2");
        assert_eq!(a2.ipv4.to_string(), "10.77.0.3");
        spawn_in_ns(&n1, tcp_echo_server(5000));
        spawn_in_ns(&n1, udp_echo_server(5001));
        let web = SocketAddr::new(IpAddr::V4(a1.ipv4), 5000);
        wait_listening(&n2, web);

        // Container to container, TCP and UDP.
        in_ns(&n2, move || tcp_roundtrip(web)).unwrap();
        let web_udp = SocketAddr::new(IpAddr::V4(a1.ipv4), 5001);
        in_ns(&n2, move || udp_roundtrip(web_udp)).unwrap();

        // DNS on the gateway: "web" resolves for the client.
        let dns = nets.start_dns("front").unwrap();
        let got = in_ns(&n2, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(&message::write_query(42, "web", message::TYPE_A), dns)
                .unwrap();
            let mut buf = [0u8; 512];
            let (n, _) = s.recv_from(&mut buf).unwrap();
            message::parse_answer_addrs(&buf[..n]).unwrap()
        });
        assert_eq!(got, (0, vec![IpAddr::V4(a1.ipv4)]));
        assert!(nets
            .resolv_conf("front")
            .unwrap()
            .contains("nameserver 10.77.0.1"));
        assert!(nets
            .hosts_file("front", "client")
            .unwrap()
            .contains("10.77.0.2\tweb"));

        // Published ports from the host side: bridge address and 127.0.0.1.
        let tcp = PortSpec {
            host_ip: None,
            host_port: 18080,
            container_port: 5000,
            protocol: Protocol::Tcp,
        };
        let udp = PortSpec {
            host_port: 18081,
            container_port: 5001,
            protocol: Protocol::Udp,
            ..tcp
        };
        nets.publish("front", "web", tcp).unwrap();
        nets.publish("front", "web", udp).unwrap();
        tcp_roundtrip("127.0.0.1:18080".parse().unwrap()).unwrap();
        tcp_roundtrip(SocketAddr::new(info.gateway, 18080)).unwrap();
        udp_roundtrip("127.0.0.1:18081".parse().unwrap()).unwrap();
        // The port is taken now, also for another container.
        let err = nets
            .publish("front", "client", tcp)
            .unwrap_err()
            .to_string();
        assert!(err.contains("host_port") && err.contains("18080"), "{err}");
        nets.unpublish("front", "web", tcp).unwrap();
        assert!(tcp_roundtrip("127.0.0.1:18080".parse().unwrap()).is_err());

        // Counters match the bytes sent.
        let before = nets.traffic("front", "client").unwrap();
        let payload = 200_000usize;
        in_ns(&n2, move || {
            let mut c = TcpStream::connect(web).unwrap();
            let data = vec![7u8; payload];
            let mut back = vec![0u8; payload];
            c.write_all(&data).unwrap();
            c.read_exact(&mut back).unwrap();
        });
        let after = nets.traffic("front", "client").unwrap();
        let sent = after.sent_bytes - before.sent_bytes;
        let recv = after.received_bytes - before.received_bytes;
        // Payload plus TCP/IP/Ethernet headers (at most ~10% for these segment sizes).
        assert!(
            sent >= payload as u64 && sent < payload as u64 * 11 / 10,
            "sent {sent}"
        );
        assert!(
            recv >= payload as u64 && recv < payload as u64 * 11 / 10,
            "recv {recv}"
        );

        nets.stop_dns("front");
        nets.detach("front", "web").unwrap();
        nets.detach("front", "client").unwrap();
        nets.remove_network("front").unwrap();
        assert!(!nft_tables().contains("condo"));
    });
}

#[test]
fn networks_are_isolated_from_each_other_and_the_host() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("red", "10.78.0.0/24")).unwrap();
        let blue = nets.create_network(&spec("blue", "10.79.0.0/24")).unwrap();
        let (r, b) = (new_container_ns(), new_container_ns());
        let ar = nets.attach("red", &req("r1", &r)).unwrap();
        nets.attach("blue", &req("b1", &b)).unwrap();
        spawn_in_ns(&r, tcp_echo_server(6000));
        let target = SocketAddr::new(IpAddr::V4(ar.ipv4), 6000);
        wait_listening(&r, target);
        let t0 = std::time::Instant::now();
        assert!(in_ns(&b, move || tcp_roundtrip(target)).is_err());
        assert!(t0.elapsed() < Duration::from_secs(2));
        // A host service on the gateway address is closed to containers.
        let host = TcpListener::bind("0.0.0.0:6500").unwrap();
        let gw = SocketAddr::new(blue.gateway, 6500);
        assert!(in_ns(&b, move || TcpStream::connect_timeout(
            &gw,
            Duration::from_millis(500)
        ))
        .is_err());
        drop(host);
        nets.detach("red", "r1").unwrap();
        nets.detach("blue", "b1").unwrap();
        nets.remove_network("red").unwrap();
        nets.remove_network("blue").unwrap();
    });
}

/// Round trips to `addr` until one works, for at most `secs` seconds.
fn roundtrip_within(addr: SocketAddr, secs: u64) {
    let t = std::time::Instant::now();
    while let Err(e) = tcp_roundtrip(addr) {
        assert!(t.elapsed() < Duration::from_secs(secs), "{addr}: {e}");
    }
}

#[test]
fn an_address_given_again_answers_soon() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("again", "10.76.0.0/24")).unwrap();
        // Another container keeps the bridge up, and with it the host's neighbour cache.
        let keeper = new_container_ns();
        nets.attach("again", &req("keeper", &keeper)).unwrap();
        let first = new_container_ns();
        let a = nets.attach("again", &req("c", &first)).unwrap();
        let addr = SocketAddr::new(IpAddr::V4(a.ipv4), 7000);
        // The host talks to it (its neighbour cache now holds the container's hardware
        // address), then the server ends and the namespace is let go.
        let server = spawn_in_ns(&first, tcp_echo_server_for(7000, 1));
        roundtrip_within(addr, 3);
        server.join().unwrap();
        nets.release("again", "c").unwrap();
        drop(first);
        let t = std::time::Instant::now();
        while nets.settle().unwrap() > 0 {
            assert!(t.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        // The same container back in a new namespace, with the same address.
        let second = new_container_ns();
        let b = nets.attach("again", &req("c", &second)).unwrap();
        assert_eq!(a.ipv4, b.ipv4);
        spawn_in_ns(&second, tcp_echo_server(7000));
        wait_listening(&second, addr);
        roundtrip_within(addr, 3);
        nets.detach("again", "c").unwrap();
        nets.detach("again", "keeper").unwrap();
        nets.remove_network("again").unwrap();
    });
}
