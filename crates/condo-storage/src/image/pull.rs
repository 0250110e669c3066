//! Pulling images from an OCI distribution registry: anonymous, basic or bearer-token auth,
//! indexes (linux/amd64), OCI and Docker schema 2 manifests, parallel resumable blob downloads.

use super::reference::Reference;
use super::types::{self, Descriptor, Index, Manifest};
use super::{ImageError, ImageRecord, ImageStore, MAX_DOC};
use crate::content::ContentStore;
use crate::digest::Digest;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

/// A user name and password (or token) for a registry.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Credentials for basic auth or for the token service.
    pub credentials: Option<Credentials>,
    /// Talk plain HTTP instead of HTTPS (a registry on loopback).
    pub plain_http: bool,
    /// Blobs downloaded at once.
    pub parallel: usize,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            credentials: None,
            plain_http: false,
            parallel: 3,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Progress of a pull, reported through the caller's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest is known: how many blobs and bytes will be fetched at most.
    Resolved {
        /// The image manifest.
        manifest: Digest,
        /// Config plus layers.
        blobs: usize,
        /// Their total size.
        bytes: u64,
    },
    /// Bytes of one blob so far (a resumed download starts above zero).
    Blob {
        /// The blob.
        digest: Digest,
        /// Bytes present.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// A blob is verified and stored (or was already there).
    BlobDone {
        /// The blob.
        digest: Digest,
    },
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

enum Auth {
    None,
    Basic,
    Bearer(String),
}

struct Client {
    agent: ureq::Agent,
    base: String,
    repo: String,
    creds: Option<Credentials>,
    auth: Mutex<Auth>,
}

fn basic(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64(format!("{}:{}", c.username, c.password).as_bytes())
    )
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Splits `Bearer realm="x",service="y"` into its scheme and parameters.
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while let Some((k, v)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let v = v.trim_start();
        let (val, next) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (v[..end].to_string(), &v[end..])
        };
        params.push((k, val));
        rest = next.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), params)
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repo, path)
    }

    fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<ureq::Response, ImageError> {
        let rerr = |reason: String| ImageError::Registry {
            url: url.into(),
            reason,
        };
        for attempt in 0..2 {
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            match &*self
                .auth
                .lock()
                .map_err(|_| rerr("auth state poisoned".into()))?
            {
                Auth::Bearer(t) => req = req.set("Authorization", &format!("Bearer {t}")),
                Auth::Basic => {
                    if let Some(c) = &self.creds {
                        req = req.set("Authorization", &basic(c));
                    }
                }
                Auth::None => {}
            }
            match req.call() {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if attempt == 0 => {
                    let ch = r.header("www-authenticate").unwrap_or("").to_string();
                    self.authenticate(url, &ch)?;
                }
                Err(ureq::Error::Status(code, r)) => {
                    let mut body = String::new();
                    let _ = r.into_reader().take(512).read_to_string(&mut body);
                    let reason = match code {
                        401 | 403 => format!("HTTP {code}: access denied ({})", body.trim()),
                        404 => format!("HTTP 404: not found ({})", body.trim()),
                        _ => format!("HTTP {code}: {}", body.trim()),
                    };
                    return Err(rerr(reason));
                }
                Err(e) => return Err(rerr(e.to_string())),
            }
        }
        Err(rerr("still unauthorized after authenticating".into()))
    }

    fn authenticate(&self, url: &str, challenge: &str) -> Result<(), ImageError> {
        let rerr = |reason: String| ImageError::Registry {
            url: url.into(),
            reason,
        };
        let (scheme, params) = parse_challenge(challenge);
        let new = match scheme.as_str() {
            "basic" => {
                if self.creds.is_none() {
                    return Err(rerr("registry requires credentials (basic auth)".into()));
                }
                Auth::Basic
            }
            "bearer" => {
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let realm =
                    get("realm").ok_or_else(|| rerr("bearer challenge without a realm".into()))?;
                let mut req = self.agent.get(&realm);
                if let Some(s) = get("service") {
                    req = req.query("service", &s);
                }
                let scope =
                    get("scope").unwrap_or_else(|| format!("repository:{}:pull", self.repo));
                req = req.query("scope", &scope);
                if let Some(c) = &self.creds {
                    req = req.set("Authorization", &basic(c));
                }
                let resp = req
                    .call()
                    .map_err(|e| rerr(format!("token service {realm}: {e}")))?;
                let mut raw = Vec::new();
                resp.into_reader()
                    .take(1 << 20)
                    .read_to_end(&mut raw)
                    .map_err(|e| rerr(format!("token service {realm}: {e}")))?;
                let v: serde_json::Value = serde_json::from_slice(&raw)
                    .map_err(|e| rerr(format!("token service {realm}: {e}")))?;
                let tok = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| rerr(format!("token service {realm} returned no token")))?;
                Auth::Bearer(tok.to_string())
            }
            _ => return Err(rerr(format!("unsupported auth challenge {challenge:?}"))),
        };
        *self
            .auth
            .lock()
            .map_err(|_| rerr("auth state poisoned".into()))? = new;
        Ok(())
    }

    /// Fetches a manifest or index; returns its media type, bytes and digest (checked if known).
    fn manifest(
        &self,
        object: &str,
        expect: Option<&Digest>,
    ) -> Result<(String, Vec<u8>, Digest), ImageError> {
        let url = self.url(&format!("manifests/{object}"));
        let r = self.get(&url, &[("Accept", ACCEPT.into())])?;
        let ct = r
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let mut body = Vec::new();
        r.into_reader()
            .take(MAX_DOC + 1)
            .read_to_end(&mut body)
            .map_err(|e| ImageError::Registry {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if body.len() as u64 > MAX_DOC {
            return Err(ImageError::Malformed(format!(
                "manifest {object}: larger than {MAX_DOC} bytes"
            )));
        }
        let d = Digest::of(&body);
        if let Some(e) = expect {
            if e != &d {
                return Err(crate::content::ContentError::DigestMismatch {
                    reference: url,
                    expected: e.clone(),
                    actual: d,
                }
                .into());
            }
        }
        let mt = if types::is_index(&ct) || types::is_manifest(&ct) {
            ct
        } else {
            // Some registries answer application/json; the document names its own type.
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ImageError::Malformed(format!("manifest {object}: {e}")))?;
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .unwrap_or(&ct)
                .to_string()
        };
        Ok((mt, body, d))
    }

    fn blob(
        &self,
        cs: &ContentStore,
        d: &Descriptor,
        lease: &str,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<(), ImageError> {
        if !cs.exists(&d.digest) {
            let url = self.url(&format!("blobs/{}", d.digest));
            let mut w = cs.writer(&format!("pull-{}", d.digest))?;
            if w.offset() > d.size {
                w.truncate()?;
            }
            let mut headers = Vec::new();
            if w.offset() > 0 {
                headers.push(("Range", format!("bytes={}-", w.offset())));
            }
            let r = self.get(&url, &headers)?;
            if r.status() != 206 && w.offset() > 0 {
                // The registry ignored the range: start over.
                w.truncate()?;
            }
            let mut rd = r.into_reader();
            let mut buf = vec![0u8; 256 << 10];
            let mut last = 0;
            loop {
                let n = rd.read(&mut buf).map_err(|e| ImageError::Registry {
                    url: url.clone(),
                    reason: format!("download interrupted: {e}"),
                })?;
                if n == 0 {
                    break;
                }
                if w.offset() + n as u64 > d.size {
                    return Err(crate::content::ContentError::SizeMismatch {
                        reference: url,
                        expected: d.size,
                        actual: w.offset() + n as u64,
                    }
                    .into());
                }
                let p = w.data_path().to_path_buf();
                w.write_all(&buf[..n]).map_err(super::ioe("write", &p))?;
                if w.offset() - last >= 1 << 20 || w.offset() == d.size {
                    last = w.offset();
                    progress(&Progress::Blob {
                        digest: d.digest.clone(),
                        done: w.offset(),
                        total: d.size,
                    });
                }
            }
            w.commit(Some(d.size), Some(&d.digest))?;
        }
        cs.lease_add(lease, &d.digest)?;
        progress(&Progress::BlobDone {
            digest: d.digest.clone(),
        });
        Ok(())
    }
}

/// Pulls `reference` into the store and records it under its full name.
pub fn pull(
    images: &ImageStore,
    reference: &str,
    opts: &PullOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<ImageRecord, ImageError> {
    let r = Reference::parse(reference)?;
    let scheme = if opts.plain_http { "http" } else { "https" };
    let c = Client {
        agent: ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(opts.timeout)
            .build(),
        base: format!("{scheme}://{}", r.registry),
        repo: r.repository.clone(),
        creds: opts.credentials.clone(),
        auth: Mutex::new(Auth::None),
    };
    let (mut mt, mut body, mut digest) = c.manifest(&r.object(), r.digest.as_ref())?;
    if types::is_index(&mt) {
        let idx = Index::parse(&body)?;
        let d = idx
            .pick_linux_amd64()
            .ok_or_else(|| ImageError::NoPlatform(digest.clone()))?
            .clone();
        (mt, body, digest) = c.manifest(d.digest.as_str(), Some(&d.digest))?;
    }
    if !types::is_manifest(&mt) {
        return Err(ImageError::MediaType(mt, digest));
    }
    let m = Manifest::parse(&body)?;
    let mut blobs: Vec<Descriptor> = Vec::new();
    for b in std::iter::once(&m.config).chain(&m.layers) {
        if !blobs.iter().any(|x| x.digest == b.digest) {
            blobs.push(b.clone());
        }
    }
    progress(&Progress::Resolved {
        manifest: digest.clone(),
        blobs: blobs.len(),
        bytes: blobs.iter().map(|b| b.size).sum(),
    });
    let cs = images.content();
    let lease = format!("pull-{}", &digest.hex()[..16]);
    // A killed pull leaves this lease (and resumable ingests) for a day, so a retry resumes.
    cs.lease_create(&lease, Some(24 * 3600))?;
    let queue = Mutex::new(blobs);
    let first_err: Mutex<Option<ImageError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.parallel.max(1) {
            s.spawn(|| loop {
                let next = match queue.lock() {
                    Ok(mut q) => q.pop(),
                    Err(_) => None,
                };
                let Some(d) = next else { break };
                if first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                    break;
                }
                if let Err(e) = c.blob(cs, &d, &lease, progress) {
                    if let Ok(mut fe) = first_err.lock() {
                        fe.get_or_insert(e);
                    }
                    break;
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().ok().flatten() {
        return Err(e);
    }
    cs.put(&body, Some(&digest))?;
    let target = Descriptor {
        media_type: mt,
        digest,
        size: body.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    let rec = images.put(&r.to_string(), target)?;
    let _ = cs.lease_delete(&lease);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_and_base64() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://a/token",service="reg",scope="repository:x:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p[0], ("realm".into(), "http://a/token".into()));
        assert_eq!(p[2], ("scope".into(), "repository:x:pull".into()));
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
