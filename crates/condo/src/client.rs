//! A small blocking HTTP/1.1 client for condod's API, over a unix socket or TCP.
//!
//! One connection per request (`Connection: close`); bodies may be sized, chunked or run to
//! the end of the connection. Error answers come back as [`condo_api::ErrorBody`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use condo_api::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The default daemon address.
pub const DEFAULT_HOST: &str = "unix:///var/lib/condo/condod.sock";

/// Where condod listens.
#[derive(Debug, Clone)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// `HOST:PORT`, over TLS.
    Tcp(String),
    /// `HOST:PORT`, plain HTTP (a daemon on loopback).
    Http(String),
}

impl Host {
    /// Parses `unix://PATH` or `tcp://HOST:PORT` (a bare path means a unix socket).
    pub fn parse(s: &str) -> Result<Host> {
        if let Some(p) = s.strip_prefix("unix://") {
            Ok(Host::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp://").or(s.strip_prefix("https://")) {
            Ok(Host::Tcp(a.trim_end_matches('/').to_string()))
        } else if let Some(a) = s.strip_prefix("http://") {
            Ok(Host::Http(a.trim_end_matches('/').to_string()))
        } else if s.starts_with('/') {
            Ok(Host::Unix(PathBuf::from(s)))
        } else {
            bail!("host \"{s}\": use unix://PATH, tcp://HOST:PORT (HTTPS) or http://HOST:PORT")
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
            Host::Http(a) => write!(f, "http://{a}"),
        }
    }
}

/// A connection.
pub enum Conn {
    /// Over a unix socket.
    Unix(UnixStream),
    /// Over TCP.
    Tcp(TcpStream),
}

impl Conn {
    /// Closes both directions, so that a read blocked on it returns.
    pub fn shutdown(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }

    /// A second handle on the same connection (for writing while another thread reads).
    pub fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

/// The API client.
pub struct Client {
    host: Host,
    token: Option<String>,
    ca: Option<crate::tls::Trust>,
    /// The TLS configuration, made at the first connection (the roots are parsed once).
    tls: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>>,
}

/// An answer whose body has not been read yet.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body (decoded from chunks when needed).
    pub body: BodyReader,
}

/// Reads a response body.
pub struct BodyReader {
    inner: BufReader<Conn>,
    kind: Framing,
}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    ToEnd,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.kind {
            Framing::Length(0) => Ok(0),
            Framing::Length(n) => {
                let max = (*n).min(buf.len() as u64) as usize;
                let got = self.inner.read(&mut buf[..max])?;
                *n -= got as u64;
                Ok(got)
            }
            Framing::ToEnd => self.inner.read(buf),
            Framing::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    self.inner.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        line.clear();
                        self.inner.read_line(&mut line)?;
                    }
                    let size = line.trim().split(';').next().unwrap_or("0");
                    let n = u64::from_str_radix(size, 16).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if n == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    *left = n;
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let got = self.inner.read(&mut buf[..max])?;
                if got == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed mid-chunk",
                    ));
                }
                *left -= got as u64;
                Ok(got)
            }
        }
    }
}

impl BodyReader {
    /// The connection under the body, for an upgraded exchange (buffered bytes kept).
    pub fn into_inner(self) -> BufReader<Conn> {
        self.inner
    }
}

impl Client {
    /// A client for `host`, sending `token` when there is one.
    pub fn new(host: Host, token: Option<String>, ca: Option<crate::tls::Trust>) -> Client {
        Client {
            host,
            token,
            ca,
            tls: std::sync::OnceLock::new(),
        }
    }

    fn connect(&self) -> Result<Conn> {
        let hint = || {
            format!(
                "cannot reach condod at {} (is it running? set --host or CONDO_HOST)",
                self.host
            )
        };
        Ok(match &self.host {
            Host::Unix(p) => Conn::Unix(UnixStream::connect(p).with_context(hint)?),
            Host::Tcp(a) => Conn::Unix(
                match self
                    .tls_config()
                    .and_then(|cfg| crate::tls::connect(a, cfg, self.ca.as_ref()))
                {
                    Ok(s) => s,
                    // An io error is the connection's; anything else (trust) says itself.
                    Err(e) if e.is::<std::io::Error>() => return Err(e).with_context(hint),
                    Err(e) => return Err(e),
                },
            ),
            Host::Http(a) => Conn::Tcp(TcpStream::connect(a).with_context(hint)?),
        })
    }

    fn tls_config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        if let Some(c) = self.tls.get() {
            return Ok(c.clone());
        }
        let c = crate::tls::config(self.ca.as_ref())?;
        Ok(self.tls.get_or_init(|| c).clone())
    }

    /// Sends a request and reads the answer's head.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        upgrade: Option<&str>,
    ) -> Result<Response> {
        let mut conn = self.connect()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: condod\r\nUser-Agent: condo/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        match upgrade {
            Some(u) => head.push_str(&format!("Connection: Upgrade\r\nUpgrade: {u}\r\n")),
            None => head.push_str("Connection: close\r\n"),
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes())?;
        conn.write_all(body)?;
        read_head(conn)
    }

    /// Sends `len` bytes from `r` as the body (`content_type`), calling `sent` after each
    /// piece with the bytes sent so far; an error answer becomes an error.
    pub fn upload(
        &self,
        path: &str,
        content_type: &str,
        len: u64,
        mut r: impl Read,
        mut sent: impl FnMut(u64),
    ) -> Result<Response> {
        let mut conn = self.connect()?;
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: condod\r\nUser-Agent: condo/{}\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {len}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes())?;
        let mut buf = vec![0u8; 256 << 10];
        let mut done = 0u64;
        let mut failed = None;
        while done < len {
            let want = (len - done).min(buf.len() as u64) as usize;
            let n = match r.read(&mut buf[..want]) {
                Ok(0) => bail!("the input ended after {done} of {len} bytes"),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the input"),
            };
            // The daemon may answer (and close) before it has read everything: an early
            // refusal is read below rather than lost in a broken pipe.
            if let Err(e) = conn.write_all(&buf[..n]) {
                failed = Some(e);
                break;
            }
            done += n as u64;
            sent(done);
        }
        let resp = match read_head(conn) {
            Ok(r) => r,
            Err(e) => match failed {
                Some(w) => return Err(w).context("condod stopped reading the upload"),
                None => return Err(e),
            },
        };
        check(resp)
    }

    /// Sends a request; an error answer becomes an error naming what the daemon said.
    pub fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Response> {
        check(self.send(method, path, body, None)?)
    }

    /// A JSON request with a JSON answer.
    pub fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let data = body.map(serde_json::to_vec).transpose()?;
        let mut resp = self.call(method, path, data.as_deref())?;
        let mut text = Vec::new();
        resp.body.read_to_end(&mut text)?;
        serde_json::from_slice(&text).with_context(|| {
            format!(
                "unexpected answer from condod: {}",
                String::from_utf8_lossy(&text)
            )
        })
    }

    /// A request whose answer has no body of interest.
    pub fn empty(&self, method: &str, path: &str) -> Result<()> {
        let mut resp = self.call(method, path, None)?;
        std::io::copy(&mut resp.body, &mut std::io::sink())?;
        Ok(())
    }

    /// Reads a JSON-lines answer, calling `f` for each line until it returns false.
    pub fn lines<T: DeserializeOwned>(
        &self,
        path: &str,
        mut f: impl FnMut(T) -> Result<bool>,
    ) -> Result<()> {
        let resp = self.call("GET", path, None)?;
        for line in BufReader::new(resp.body).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let v: T = serde_json::from_str(&line)
                .with_context(|| format!("unexpected line from condod: {line}"))?;
            if !f(v)? {
                break;
            }
        }
        Ok(())
    }
}

/// An error answer as an error naming what the daemon said; any other answer as it is.
fn check(mut resp: Response) -> Result<Response> {
    if resp.status >= 400 {
        let mut text = String::new();
        resp.body.read_to_string(&mut text)?;
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => anyhow::Error::new(e),
            Err(_) => anyhow!("condod answered {}: {}", resp.status, text.trim()),
        });
    }
    Ok(resp)
}

/// Reads the status line and headers of an answer.
fn read_head(conn: Conn) -> Result<Response> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)
        .context("condod closed the connection")?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP answer: {line:?}"))?;
    let mut kind = Framing::ToEnd;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                kind = Framing::Length(v.parse().unwrap_or(0));
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                kind = Framing::Chunked {
                    left: 0,
                    done: false,
                };
            }
        }
    }
    if status == 101 {
        kind = Framing::ToEnd;
    }
    Ok(Response {
        status,
        body: BodyReader { inner: r, kind },
    })
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(matches!(
            Host::parse("unix:///run/x.sock").unwrap(),
            Host::Unix(_)
        ));
        assert!(matches!(
            Host::parse("tcp://127.0.0.1:1").unwrap(),
            Host::Tcp(_)
        ));
        assert!(matches!(
            Host::parse("https://127.0.0.1:1").unwrap(),
            Host::Tcp(_)
        ));
        assert!(matches!(
            Host::parse("http://127.0.0.1:1").unwrap(),
            Host::Http(_)
        ));
        assert!(Host::parse("ftp://x").is_err());
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }
}
