//! HTTPS to condod's TCP listener.
//!
//! The handshake runs before [`connect`] returns, so an untrusted certificate is an error with
//! its reason. Then a thread carries the bytes between the TLS connection and one end of a
//! socket pair, and the caller gets the other end: a plain stream that can be cloned for a
//! reader and a writer thread (exec and attach), like the unix socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustix::event::{poll, PollFd, PollFlags};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The CA a daemon on this machine makes at first start (see condod's `--listen`).
pub const LOCAL_CA: &str = "/var/lib/condo/tls/ca.pem";

/// A CA certificate to trust, in PEM, and where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Trust {
    /// The PEM text.
    pub pem: Vec<u8>,
    /// A file name or "the context NAME".
    pub from: String,
}

impl Trust {
    /// Reads a CA file.
    pub fn file(path: &Path) -> Result<Trust> {
        Ok(Trust {
            pem: std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?,
            from: path.display().to_string(),
        })
    }
}

/// The certificates trusted: `ca` when given, else the local daemon's CA when readable; and the
/// public roots, for a daemon behind a proxy with a public certificate.
pub fn config(ca: Option<&Trust>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let local;
    let ca = match ca {
        Some(t) => Some(t),
        None => {
            local = Trust::file(Path::new(LOCAL_CA)).ok();
            local.as_ref()
        }
    };
    if let Some(t) = ca {
        let certs = CertificateDer::pem_slice_iter(&t.pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("CA {}: {e}", t.from))?;
        if certs.is_empty() {
            return Err(anyhow!("CA {}: no certificate in it", t.from));
        }
        for c in certs {
            roots.add(c).map_err(|e| anyhow!("CA {}: {e}", t.from))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Connects to `addr` (`HOST:PORT`) over TLS with `cfg`, made by [`config`] from `ca`.
pub fn connect(addr: &str, cfg: Arc<ClientConfig>, ca: Option<&Trust>) -> Result<UnixStream> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| anyhow!("\"{host}\" is not a host name or an address: {e}"))?;
    let mut tcp = TcpStream::connect(addr)?;
    let _ = tcp.set_nodelay(true);
    let mut tls = ClientConnection::new(cfg, name)?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| {
            let trusted = match ca {
                Some(t) => t.from.clone(),
                None => format!("{LOCAL_CA} and the public CAs"),
            };
            anyhow!(
                "TLS with {addr}: {e} (trusted: {trusted}; give the daemon's ROOT/tls/ca.pem \
                 with --ca or CONDO_CA)"
            )
        })?;
    }
    let (mine, theirs) = UnixStream::pair()?;
    std::thread::spawn(move || {
        let _ = pump(tls, tcp, theirs);
    });
    Ok(mine)
}

/// Carries plaintext between `pair` and the TLS connection until the daemon's side ends.
fn pump(
    mut tls: ClientConnection,
    mut tcp: TcpStream,
    mut pair: UnixStream,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pair_open = true;
    let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
    'run: loop {
        let (from_tcp, from_pair) = {
            // A closed side leaves the set: poll reports a hang-up whatever is asked.
            let mut fds = vec![PollFd::new(&tcp, PollFlags::IN)];
            if pair_open {
                fds.push(PollFd::new(&pair, PollFlags::IN));
            }
            poll(&mut fds, None)?;
            (
                fds[0].revents(),
                fds.get(1)
                    .map(|f| f.revents())
                    .unwrap_or_else(PollFlags::empty),
            )
        };
        if from_tcp.intersects(ready) {
            // One read of what arrived (poll said it will not block), then its plaintext out.
            let mut ended = tls.read_tls(&mut tcp)? == 0;
            tls.process_new_packets().map_err(std::io::Error::other)?;
            loop {
                match tls.reader().read(&mut buf) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => pair.write_all(&buf[..n])?,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        ended = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if ended {
                break 'run;
            }
        }
        if pair_open && from_pair.intersects(ready) {
            let n = pair.read(&mut buf)?;
            if n == 0 {
                pair_open = false;
                tls.send_close_notify();
            } else {
                tls.writer().write_all(&buf[..n])?;
            }
        }
        while tls.wants_write() {
            tls.write_tls(&mut tcp)?;
        }
    }
    let _ = pair.shutdown(std::net::Shutdown::Write);
    let _ = tcp.shutdown(std::net::Shutdown::Both);
    Ok(())
}
