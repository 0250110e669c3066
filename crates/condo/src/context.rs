//! Named contexts: a daemon's address and a token to use with it, kept in
//! `$XDG_CONFIG_HOME/condo/contexts.json` (else `~/.config/condo/contexts.json`, mode 0600), and
//! `condo login`, which checks a token against the daemon before it keeps it.
//!
//! Which daemon and token a command uses: `--host`/`CONDO_HOST` and `--token`/`CONDO_TOKEN`
//! when given; else those of the context named by `--context`/`CONDO_CONTEXT`, else of the
//! current context. A context's token goes only to that context's host.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use condo_api::Principal;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Host, DEFAULT_HOST};
use crate::output::table;
use crate::tls::Trust;

/// One context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// `unix://PATH` or `tcp://HOST:PORT`.
    pub host: String,
    /// The API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Who the token was at login, for `context ls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Its tenant at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The CA certificate (PEM) trusted for the host's TLS, when one was given at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contexts {
    /// The context commands use unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// Where the contexts live.
fn path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => bail!("neither XDG_CONFIG_HOME nor HOME is set: no place for contexts"),
        },
    };
    Ok(base.join("condo").join("contexts.json"))
}

impl Contexts {
    /// Reads the file (none yet: no contexts).
    pub fn load() -> Result<Contexts> {
        let p = path()?;
        match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).with_context(|| format!("{} is not valid", p.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Writes the file whole (it holds secrets: only its owner may read it).
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let p = path()?;
        let dir = p.parent().unwrap_or(&p).to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".contexts.json.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))
    }
}

/// The host and token a command uses (see the module's note).
pub fn resolve(
    host: Option<String>,
    token: Option<String>,
    context: Option<String>,
    ca: Option<&std::path::Path>,
) -> Result<(Host, Option<String>, Option<Trust>)> {
    // Without a config directory (no HOME), or with both given, no context is needed.
    let all = if context.is_none() && (path().is_err() || (host.is_some() && token.is_some())) {
        Contexts::default()
    } else {
        Contexts::load()?
    };
    let chosen = match &context {
        Some(name) => Some(
            all.contexts
                .get(name)
                .with_context(|| format!("no context \"{name}\" (see condo context ls)"))?,
        ),
        None => all.current.as_ref().and_then(|n| all.contexts.get(n)),
    };
    let token = token.filter(|t| !t.is_empty());
    // The context's token and CA go only to the context's own host.
    let (host, token, mine) = match (host, chosen) {
        (Some(h), Some(c)) => {
            let same = Host::parse(&h)?.to_string() == Host::parse(&c.host)?.to_string();
            let t = token.or_else(|| c.token.clone().filter(|_| same));
            (h, t, Some(c).filter(|_| same))
        }
        (Some(h), None) => (h, token, None),
        (None, Some(c)) => (c.host.clone(), token.or_else(|| c.token.clone()), Some(c)),
        (None, None) => (DEFAULT_HOST.to_string(), token, None),
    };
    let trust = match ca {
        Some(p) => Some(Trust::file(p)?),
        None => mine.and_then(|c| {
            c.ca.as_ref().map(|pem| Trust {
                pem: pem.clone().into_bytes(),
                from: "the context's CA".into(),
            })
        }),
    };
    Ok((Host::parse(&host)?, token, trust))
}

/// Context names: like container names.
fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() <= 64
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `condo login`: checks the token with the daemon, then keeps both as context `name` and makes
/// it the current one.
pub fn login(
    name: &str,
    host: &str,
    token: Option<String>,
    stdin: bool,
    ca: Option<&std::path::Path>,
) -> Result<i32> {
    if !valid_name(name) {
        bail!("context \"{name}\": use letters, digits and _ . -");
    }
    let token = match (token, stdin) {
        (Some(t), false) => t,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_string()
        }
        (Some(_), true) => bail!("give the token with --token or --token-stdin, not both"),
        (None, false) => bail!("give the token with --token TOKEN or --token-stdin"),
    };
    if token.is_empty() {
        bail!("the token is empty");
    }
    let parsed = Host::parse(host)?;
    let trust = ca.map(Trust::file).transpose()?;
    if trust.is_some() && !matches!(parsed, Host::Tcp(_)) {
        bail!("--ca is for a tcp:// (HTTPS) host, not {parsed}");
    }
    let who: Principal = Client::new(parsed.clone(), Some(token.clone()), trust.clone())
        .json("GET", "/v1/whoami", None::<&()>)
        .with_context(|| format!("logging in to {parsed}"))?;
    let mut all = Contexts::load()?;
    all.contexts.insert(
        name.to_string(),
        Context {
            host: parsed.to_string(),
            token: Some(token),
            principal: Some(who.id.clone()),
            tenant: Some(who.tenant.clone()),
            ca: trust.map(|t| String::from_utf8_lossy(&t.pem).into_owned()),
        },
    );
    all.current = Some(name.to_string());
    all.save()?;
    outln!(
        "logged in to {parsed} as {} ({}, tenant {}); context \"{name}\" is current",
        who.id,
        who.role,
        who.tenant
    );
    Ok(0)
}

/// `condo context ls`.
pub fn list(output: crate::Format) -> Result<i32> {
    let all = Contexts::load()?;
    if output == crate::Format::Json {
        let list: Vec<serde_json::Value> = all
            .contexts
            .iter()
            .map(|(n, c)| {
                serde_json::json!({
                    "name": n,
                    "host": c.host,
                    "principal": c.principal,
                    "tenant": c.tenant,
                    "current": all.current.as_deref() == Some(n.as_str()),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .contexts
        .iter()
        .map(|(n, c)| {
            let current = all.current.as_deref() == Some(n.as_str());
            vec![
                if current { format!("{n} *") } else { n.clone() },
                c.host.clone(),
                c.principal.clone().unwrap_or_default(),
                c.tenant.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["NAME", "HOST", "PRINCIPAL", "TENANT"], &rows);
    Ok(0)
}

/// `condo context use`.
pub fn use_(name: &str) -> Result<i32> {
    let mut all = Contexts::load()?;
    if !all.contexts.contains_key(name) {
        bail!("no context \"{name}\" (see condo context ls)");
    }
    all.current = Some(name.to_string());
    all.save()?;
    Ok(0)
}

/// `condo context rm`: forgets contexts (and their tokens, which keep working until revoked).
pub fn remove(names: &[String]) -> Result<i32> {
    let mut all = Contexts::load()?;
    for n in names {
        if all.contexts.remove(n).is_none() {
            bail!("no context \"{n}\" (see condo context ls)");
        }
        if all.current.as_deref() == Some(n.as_str()) {
            all.current = None;
        }
    }
    all.save()?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("prod-1"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
    }
}
