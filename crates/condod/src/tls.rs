//! TLS for the TCP listener.
//!
//! At first start condod makes its own certificate authority under `ROOT/tls/` (`ca.pem`, the
//! certificate clients trust; `ca.key`, mode 0600). At every start it issues itself a server
//! certificate from that CA for the names it may be reached by (localhost, the loopback
//! addresses, the host's name, the listen address, and each `--tls-san`), so a client that
//! trusts `ca.pem` once keeps trusting the daemon across restarts and new names. An operator
//! with a certificate of their own gives `--tls-cert` and `--tls-key` instead.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Where the CA's certificate is, under the daemon's root.
pub fn ca_path(root: &Path) -> PathBuf {
    root.join("tls").join("ca.pem")
}

/// Where the certificate and key of the server come from.
pub enum Identity {
    /// Issued at start by the daemon's own CA, for these extra names.
    Own { extra_names: Vec<String> },
    /// The operator's PEM files: the certificate chain and its private key.
    Given { cert: PathBuf, key: PathBuf },
}

/// The server configuration for `listen` (the address the TCP listener is bound to).
pub fn server_config(
    root: &Path,
    listen: SocketAddr,
    id: &Identity,
) -> Result<Arc<rustls::ServerConfig>> {
    let (chain, key) = match id {
        Identity::Given { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .with_context(|| {
                    format!("--tls-cert {}: not a PEM certificate chain", cert.display())
                })?;
            if chain.is_empty() {
                bail!("--tls-cert {}: holds no certificate", cert.display());
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("--tls-key {}: not a PEM private key", key.display()))?;
            (chain, key)
        }
        Identity::Own { extra_names } => issue(root, listen, extra_names)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate does not go with its key")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The CA's key, made at first start.
fn ca_key(dir: &Path) -> Result<KeyPair> {
    let key_path = dir.join("ca.key");
    match std::fs::read_to_string(&key_path) {
        Ok(pem) => {
            KeyPair::from_pem(&pem).with_context(|| format!("{} is not a key", key_path.display()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = KeyPair::generate().context("cannot make the CA's key")?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", key_path.display())),
    }
}

/// The CA's certificate parameters. Its name follows from its key alone (it carries the key's
/// fingerprint), so the issuer of each start's server certificate is rebuilt from the key
/// without parsing `ca.pem`: what a client checks of a trusted CA is its name and its key.
fn ca_params(key: &KeyPair) -> Result<CertificateParams> {
    let fp = Sha256::digest(key.public_key_der());
    let fp: String = fp[..6].iter().map(|b| format!("{b:02x}")).collect();
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Condo");
    dn.push(DnType::CommonName, format!("Condo CA {fp}"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let (y, m, d) = today();
    p.not_before = rcgen::date_time_ymd(y - 1, m, d.min(28));
    p.not_after = rcgen::date_time_ymd(y + 20, m, d.min(28));
    Ok(p)
}

/// Issues the server's certificate from the daemon's CA (made the first time).
fn issue(
    root: &Path,
    listen: SocketAddr,
    extra: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let dir = root.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let key = ca_key(&dir)?;
    let ca = ca_params(&key)?
        .self_signed(&key)
        .context("cannot sign the CA's certificate")?;
    let ca_pem = ca_path(root);
    if !ca_pem.exists() {
        // Written once (and again only if lost): clients keep a copy of it.
        let tmp = dir.join("ca.pem.tmp");
        std::fs::write(&tmp, ca.pem())?;
        std::fs::rename(&tmp, &ca_pem)?;
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if !host.is_empty() {
        names.push(host);
    }
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    for n in &names {
        p.subject_alt_names.push(match n.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                n.clone()
                    .try_into()
                    .with_context(|| format!("--tls-san {n}: not a DNS name or an IP address"))?,
            ),
        });
    }
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "condod");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    let (y, m, d) = today();
    p.not_before = rcgen::date_time_ymd(y - 1, m, d.min(28));
    p.not_after = rcgen::date_time_ymd(y + 1, m, d.min(28));
    let server_key = KeyPair::generate().context("cannot make the server's key")?;
    let cert = p
        .signed_by(&server_key, &ca, &key)
        .context("cannot sign the server's certificate")?;
    let chain = vec![cert.der().clone()];
    let key = PrivateKeyDer::try_from(server_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the server's key: {e}"))?;
    Ok((chain, key))
}

/// Today's date in UTC, as (year, month, day).
fn today() -> (i32, u8, u8) {
    let t = condo_runtime::state::now_rfc3339();
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i32>().ok()).unwrap_or(1);
    (n(0..4), n(5..7) as u8, n(8..10) as u8)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A TCP listener whose connections come out of a TLS handshake. Handshakes run in tasks of
/// their own, so a slow or silent client holds up no one; one that has not finished in 10 s
/// is dropped.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`.
    pub fn new(tcp: TcpListener, cfg: Arc<rustls::ServerConfig>) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            loop {
                match tcp.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        let (acceptor, tx) = (acceptor.clone(), tx.clone());
                        tokio::spawn(async move {
                            let hs =
                                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(s));
                            match hs.await {
                                Ok(Ok(t)) => {
                                    let _ = tx.send((t, peer)).await;
                                }
                                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                                Err(_) => tracing::debug!("TLS handshake with {peer}: timed out"),
                            }
                        });
                    }
                    // Out of descriptors, say: wait a little rather than spin.
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(TlsListener { ready, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task ended (it does not): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
