//! A small resolver for one network: answers for the network's containers, forwards the
//! rest to the host's resolvers. One UDP thread and one TCP thread, stopped on demand.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::message::{self, Query};

/// The names of one network's containers and their addresses, shared with the server.
#[derive(Debug, Default)]
pub struct Zone {
    names: RwLock<HashMap<String, Vec<IpAddr>>>,
}

impl Zone {
    /// Sets the addresses of `name` (lowercased).
    pub fn insert(&self, name: &str, addrs: Vec<IpAddr>) {
        if let Ok(mut n) = self.names.write() {
            n.insert(name.to_ascii_lowercase(), addrs);
        }
    }

    /// Forgets `name`.
    pub fn remove(&self, name: &str) {
        if let Ok(mut n) = self.names.write() {
            n.remove(&name.to_ascii_lowercase());
        }
    }

    /// The addresses of `name`, if it is a container of the network.
    pub fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.names.read().ok()?.get(name).cloned()
    }
}

/// The nameservers listed in resolv.conf text, on port 53.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next())?
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Works out the answer to one query.
fn resolve(packet: &[u8], zone: &Zone, upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let q: Query = match message::parse_query(packet) {
        Ok(q) => q,
        Err(_) if packet.len() >= 12 => {
            let mut out = packet[..12].to_vec();
            out[2] |= 0x80;
            out[3] = (out[3] & 0xf0) | message::RCODE_FORMERR;
            out[4..12].fill(0);
            return Some(out);
        }
        Err(_) => return None,
    };
    let local = q.name.strip_suffix(".condo").unwrap_or(&q.name);
    if let Some(addrs) = zone.lookup(local) {
        let want: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|a| match q.qtype {
                message::TYPE_A => a.is_ipv4(),
                message::TYPE_AAAA => a.is_ipv6(),
                _ => false,
            })
            .collect();
        return Some(message::write_answer(&q, message::RCODE_NOERROR, &want, 5));
    }
    if !q.name.contains('.') && upstreams.is_empty() {
        return Some(message::write_answer(&q, message::RCODE_NXDOMAIN, &[], 5));
    }
    Some(
        forward(packet, upstreams)
            .unwrap_or_else(|| message::write_answer(&q, message::RCODE_SERVFAIL, &[], 0)),
    )
}

/// Asks each upstream in turn over UDP and returns the first answer.
fn forward(packet: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
        if sock.send_to(packet, up).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == *up && n >= 2 && buf[..2] == packet[..2] {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

/// A running resolver; stops when [`DnsServer::stop`] is called or it is dropped.
pub struct DnsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` and starts answering from `zone`.
    pub fn start(
        addr: SocketAddr,
        zone: Arc<Zone>,
        upstreams: Vec<SocketAddr>,
    ) -> io::Result<Self> {
        let udp = UdpSocket::bind(addr)?;
        let addr = udp.local_addr()?;
        let tcp = TcpListener::bind(addr)?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let upstreams = Arc::new(upstreams);
        let mut threads = Vec::new();
        {
            let (stop, zone, ups) = (stop.clone(), zone.clone(), upstreams.clone());
            threads.push(std::thread::spawn(move || {
                serve_udp(udp, &stop, &zone, &ups)
            }));
        }
        {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                serve_tcp(tcp, &stop, zone, upstreams)
            }));
        }
        Ok(DnsServer {
            addr,
            stop,
            threads,
        })
    }

    /// The address it answers on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops both threads and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
        }
    }
}

fn serve_udp(sock: UdpSocket, stop: &AtomicBool, zone: &Zone, upstreams: &[SocketAddr]) {
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if let Some(answer) = resolve(&buf[..n], zone, upstreams) {
            let _ = sock.send_to(&answer, peer);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    stop: &AtomicBool,
    zone: Arc<Zone>,
    upstreams: Arc<Vec<SocketAddr>>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        let (zone, ups) = (zone.clone(), upstreams.clone());
        std::thread::spawn(move || {
            let _ = serve_tcp_conn(conn, &zone, &ups);
        });
    }
}

fn serve_tcp_conn(mut conn: TcpStream, zone: &Zone, upstreams: &[SocketAddr]) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    loop {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len)?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut msg)?;
        let Some(answer) = resolve(&msg, zone, upstreams) else {
            return Ok(());
        };
        let mut out = (answer.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&answer);
        conn.write_all(&out)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameservers() {
        let ups =
            upstreams_from_resolv_conf("# x\nnameserver 10.0.0.53\nsearch a\nnameserver ::1\n");
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[0].to_string(), "10.0.0.53:53");
    }

    #[test]
    fn answers_from_zone_and_refuses_garbage() {
        let z = Zone::default();
        z.insert("Web", vec!["10.0.0.2".parse().unwrap()]);
        let q = message::write_query(9, "web", message::TYPE_A);
        let a = resolve(&q, &z, &[]).unwrap();
        let (rc, addrs) = message::parse_answer_addrs(&a).unwrap();
        assert_eq!((rc, addrs.len()), (0, 1));
        let q = message::write_query(9, "nope", message::TYPE_A);
        let (rc, _) = message::parse_answer_addrs(&resolve(&q, &z, &[]).unwrap()).unwrap();
        assert_eq!(rc, message::RCODE_NXDOMAIN);
        let garbage = [0u8; 13];
        let a = resolve(&garbage, &z, &[]).unwrap();
        assert_eq!(a[3] & 0x0f, message::RCODE_FORMERR);
    }
}
