//! Rate limits, persistence across a restart, bad input and a leak check. Needs root.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use condo_net::{Allowance, AllowancePolicy, PortSpec, Protocol, RateLimit};

/// Sends `bytes` from a thread in `from` to a sink in `to_ns` at `to`; returns bits/s seen by the sink.
fn measure(
    sender_ns: Option<&std::os::fd::OwnedFd>,
    sink_ns: Option<&std::os::fd::OwnedFd>,
    to: SocketAddr,
    bytes: usize,
) -> f64 {
    let sink = move || {
        let l = TcpListener::bind(to).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = 0usize;
        let mut start = None;
        while got < bytes {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            start.get_or_insert_with(Instant::now);
            got += n;
        }
        let secs = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(1.0);
        got as f64 * 8.0 / secs
    };
    let h = match sink_ns {
        Some(ns) => spawn_in_ns(ns, sink),
        None => std::thread::spawn(sink),
    };
    std::thread::sleep(Duration::from_millis(100));
    let send = move || {
        let mut c = TcpStream::connect(to).unwrap();
        let chunk = vec![1u8; 65536];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            c.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    };
    match sender_ns {
        Some(ns) => in_ns(ns, send),
        None => send(),
    }
    h.join().unwrap()
}

#[test]
fn rate_limits_hold_within_15_percent() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("slow", "10.80.0.0/24")).unwrap();
        let ns = new_container_ns();
        let a = nets.attach("slow", &req("c", &ns)).unwrap();
        let limit = 10_000_000u64;
        nets.set_rate(
            "slow",
            "c",
            RateLimit {
                ingress_bps: Some(limit),
                egress_bps: Some(limit),
            },
        )
        .unwrap();
        // Towards the container: the host sends, the container receives.
        let rx = measure(
            None,
            Some(&ns),
            SocketAddr::new(IpAddr::V4(a.ipv4), 7000),
            3_000_000,
        );
        // From the container to an unlimited peer on the same network.
        let peer = new_container_ns();
        let b = nets.attach("slow", &req("peer", &peer)).unwrap();
        let tx = measure(
            Some(&ns),
            Some(&peer),
            SocketAddr::new(IpAddr::V4(b.ipv4), 7001),
            3_000_000,
        );
        nets.detach("slow", "peer").unwrap();
        for (what, bps) in [("ingress", rx), ("egress", tx)] {
            let ratio = bps / limit as f64;
            eprintln!("{what}: {:.2} Mbit/s (ratio {ratio:.3})", bps / 1e6);
            assert!((0.85..=1.15).contains(&ratio), "{what} {bps} bit/s");
        }
        // Live update: lift the limits.
        nets.set_rate("slow", "c", RateLimit::default()).unwrap();
        let fast = measure(
            None,
            Some(&ns),
            SocketAddr::new(IpAddr::V4(a.ipv4), 7002),
            3_000_000,
        );
        assert!(fast > 3.0 * limit as f64, "unlimited {fast}");
        // Allowance used up with the stop policy: traffic is dropped.
        nets.set_allowance(
            "slow",
            "c",
            Some(Allowance {
                bytes_per_month: 1000,
                policy: AllowancePolicy::Stop,
            }),
        )
        .unwrap();
        let period = condo_net::current_period();
        let target = SocketAddr::new(IpAddr::V4(a.ipv4), 7003);
        let _l = in_ns(&ns, move || TcpListener::bind(target).unwrap());
        let mut c = TcpStream::connect_timeout(&target, Duration::from_millis(300)).unwrap();
        c.write_all(&[5u8; 20_000]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(c);
        let ev = nets.check_allowances(&period).unwrap();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].exceeded);
        assert!(TcpStream::connect_timeout(&target, Duration::from_millis(300)).is_err());
        // A new month lifts it.
        let ev = nets.check_allowances("2999-01").unwrap();
        assert!(!ev[0].exceeded);
        nets.detach("slow", "c").unwrap();
        nets.remove_network("slow").unwrap();
        assert_eq!(links(), vec!["lo".to_string()]);
    });
}

#[test]
fn leases_survive_a_restart() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let (n1, n2, n3) = (new_container_ns(), new_container_ns(), new_container_ns());
        let (a1, a2, before) = {
            let mut nets = open(dir.path());
            nets.create_network(&condo_net::NetworkSpec {
                subnet6: Some("fd00:81::/64".into()),
                ..spec("keep", "10.81.0.0/24")
            })
            .unwrap();
            let a1 = nets.attach("keep", &req("one", &n1)).unwrap();
            let a2 = nets.attach("keep", &req("two", &n2)).unwrap();
            nets.detach("keep", "one").unwrap();
            (a1, a2, nets.list())
        };
        let mut nets = open(dir.path());
        assert_eq!(nets.list(), before);
        assert_eq!(nets.lease("keep", "two").unwrap().ipv4, a2.ipv4);
        assert!(a2.ipv6.is_some());
        // The freed address may return, the leased one never.
        let a3 = nets.attach("keep", &req("three", &n3)).unwrap();
        assert_ne!(a3.ipv4, a2.ipv4);
        assert_eq!(a3.ipv4, a1.ipv4);
        nets.detach("keep", "two").unwrap();
        nets.detach("keep", "three").unwrap();
        nets.remove_network("keep").unwrap();
    });
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("base", "10.82.0.0/16")).unwrap();
        let cases = [
            (spec("over", "10.82.5.0/24"), "subnet"),
            (spec("bad", "10.83.0.0/33"), "subnet"),
            (spec("bad", "banana"), "subnet"),
            (spec("Bad/name", "10.84.0.0/24"), "name"),
            (
                condo_net::NetworkSpec {
                    gateway: Some("10.99.0.1".into()),
                    ..spec("gw", "10.85.0.0/24")
                },
                "gateway",
            ),
            (spec("base", "10.86.0.0/24"), "name"),
        ];
        for (s, field) in cases {
            let err = nets.create_network(&s).unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
        assert_eq!(nets.list().len(), 1);
        let ns = new_container_ns();
        nets.attach("base", &req("x", &ns)).unwrap();
        let p = PortSpec {
            host_ip: None,
            host_port: 80,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert!(nets
            .publish("base", "x", p)
            .unwrap_err()
            .to_string()
            .contains("host_port"));
        let err = nets.attach("nope", &req("y", &ns)).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        nets.detach("base", "x").unwrap();
        nets.remove_network("base").unwrap();
        assert_eq!(links(), vec!["lo".to_string()]);
        assert!(!nft_tables().contains("condo"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("networks"))
                .unwrap()
                .count(),
            0
        );
    });
}

#[test]
fn no_leak_after_200_cycles() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("churn", "10.87.0.0/24")).unwrap();
        let kept = new_container_ns();
        for i in 0..200u16 {
            let id = format!("c{i}");
            // Odd cycles: a namespace that lives on (detach deletes the veth); even cycles:
            // a namespace that dies at once (release leaves the veth to it).
            let fresh = (i % 2 == 0).then(new_container_ns);
            nets.attach("churn", &req(&id, fresh.as_ref().unwrap_or(&kept)))
                .unwrap();
            if i % 10 == 0 || i % 10 == 5 {
                let p = PortSpec {
                    host_ip: None,
                    host_port: 20000 + i,
                    container_port: 80,
                    protocol: Protocol::Udp,
                };
                nets.publish("churn", &id, p).unwrap();
                nets.set_rate(
                    "churn",
                    &id,
                    RateLimit {
                        ingress_bps: Some(1_000_000),
                        egress_bps: Some(1_000_000),
                    },
                )
                .unwrap();
            }
            match fresh {
                Some(ns) => {
                    nets.release("churn", &id).unwrap();
                    drop(ns);
                }
                None => nets.detach("churn", &id).unwrap(),
            }
        }
        assert!(nets.get("churn").unwrap().containers.is_empty());
        // The released veths go with their namespaces, without anyone deleting them.
        let t = Instant::now();
        while nets.settle().unwrap() > 0 {
            assert!(t.elapsed() < Duration::from_secs(5), "veths still draining");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(t.elapsed() < Duration::from_secs(condo_net::DRAIN_LIMIT_SECS));
        let mut have = links();
        have.sort();
        assert_eq!(have, vec!["cb-churn".to_string(), "lo".to_string()]);
        assert_eq!(in_ns(&kept, links), vec!["lo".to_string()]);
        let text = std::fs::read_to_string(dir.path().join("networks/churn.json")).unwrap();
        let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(stored["leases"], serde_json::json!({}), "{text}");
        assert_eq!(stored["draining"], serde_json::json!([]), "{text}");
        let subnet: condo_net::cidr::IpNet = "10.87.0.0/24".parse().unwrap();
        let routed = |nl: &mut condo_net::netlink::Netlink| {
            let routes = nl.route_destinations().unwrap();
            assert!(routes.iter().any(|(a, _)| a.is_loopback()), "{routes:?}");
            routes.iter().any(|(a, _)| subnet.contains(*a))
        };
        let mut nl = condo_net::netlink::Netlink::open().unwrap();
        assert!(routed(&mut nl), "the bridge's routes are seen");
        nets.remove_network("churn").unwrap();
        assert_eq!(links(), vec!["lo".to_string()]);
        assert!(!nft_tables().contains("condo"));
        assert!(!routed(&mut nl), "routes of the removed network are left");
        assert_eq!(
            std::fs::read_dir(dir.path().join("networks"))
                .unwrap()
                .count(),
            0
        );
    });
}

#[test]
fn a_released_address_waits_for_its_veth() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("hold", "10.88.0.0/24")).unwrap();
        // Released while its namespace lives on: the veth stays, and so does its address.
        let alive = new_container_ns();
        let a = nets.attach("hold", &req("a", &alive)).unwrap();
        nets.release("hold", "a").unwrap();
        assert_eq!(nets.settle().unwrap(), 1);
        let other = new_container_ns();
        let b = nets.attach("hold", &req("b", &other)).unwrap();
        assert_ne!(a.ipv4, b.ipv4);
        // Attached again at once: a veth of a new name beside the old one.
        let restarted = new_container_ns();
        let again = nets.attach("hold", &req("a", &restarted)).unwrap();
        assert_ne!(again.host_veth, a.host_veth);
        assert!(links().contains(&a.host_veth));
        nets.detach("hold", "a").unwrap();
        nets.detach("hold", "b").unwrap();
        // Removing the network deletes what its namespace kept.
        nets.remove_network("hold").unwrap();
        assert_eq!(links(), vec!["lo".to_string()]);
    });
}

#[test]
fn an_allowance_used_up_stays_used_up_across_attaches() {
    in_private_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut nets = open(dir.path());
        nets.create_network(&spec("meter", "10.89.0.0/24")).unwrap();
        let stop = Some(Allowance {
            bytes_per_month: 1000,
            policy: AllowancePolicy::Stop,
        });
        let ns = new_container_ns();
        let a = nets.attach("meter", &req("c", &ns)).unwrap();
        nets.set_allowance("meter", "c", stop).unwrap();
        let target = SocketAddr::new(IpAddr::V4(a.ipv4), 7100);
        let _l = in_ns(&ns, move || TcpListener::bind(target).unwrap());
        let mut c = TcpStream::connect_timeout(&target, Duration::from_millis(500)).unwrap();
        c.write_all(&[5u8; 20_000]).unwrap();
        drop(c);
        std::thread::sleep(Duration::from_millis(100));
        let ev = nets.check_allowances(&condo_net::current_period()).unwrap();
        assert!(ev.len() == 1 && ev[0].exceeded, "{ev:?}");
        nets.release("meter", "c").unwrap();
        drop((_l, ns));
        // Back on the network the same month: still stopped, without new traffic.
        let ns = new_container_ns();
        let a = nets.attach("meter", &req("c", &ns)).unwrap();
        nets.set_allowance("meter", "c", stop).unwrap();
        assert!(nets.lease("meter", "c").unwrap().usage.exceeded);
        let target = SocketAddr::new(IpAddr::V4(a.ipv4), 7101);
        let _l = in_ns(&ns, move || TcpListener::bind(target).unwrap());
        assert!(TcpStream::connect_timeout(&target, Duration::from_millis(300)).is_err());
        // A container gone for good starts afresh.
        nets.detach("meter", "c").unwrap();
        nets.forget_usage("c").unwrap();
        nets.attach("meter", &req("c", &ns)).unwrap();
        nets.set_allowance("meter", "c", stop).unwrap();
        assert!(!nets.lease("meter", "c").unwrap().usage.exceeded);
        nets.detach("meter", "c").unwrap();
        nets.remove_network("meter").unwrap();
    });
}
