//! Who makes each request, and what they may do: the one authorisation layer of the API.
//!
//! A request on the unix socket from a root peer is the admin. Any other request needs
//! `Authorization: Bearer TOKEN`; tokens are stored as SHA-256 hashes and act as their user (or,
//! for the admin token, as the admin). The middleware, in this order:
//! 1. finds the route's [`Access`] in [`crate::api::ROUTES`];
//! 2. authenticates (401), then checks the principal's role grants that access (403), the same
//!    answer whatever the resource, so a refusal says nothing about what exists;
//! 3. checks the resource the path names (`/v1/containers/{id}/…`, `/v1/tenants/{name}`, …) is
//!    visible to the principal's tenant, answering 404 as for one that does not exist;
//! 4. runs the handler with the [`Caller`], whose [`Caller::scope`] every lookup and listing
//!    goes through, and records every mutating request in the audit log.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use condo_api::{Principal, Role};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::api::audit::{self, Record};
use crate::db::DEFAULT_TENANT;
use crate::error::{ApiError, ApiResult};
use crate::App;

/// How a connection reached us.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's uid on the unix socket; `None` over TCP.
    pub uid: Option<u32>,
    /// Whether the connection is TLS.
    pub tls: bool,
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, tokio::net::UnixListener>) -> Peer {
        Peer {
            uid: s.io().peer_cred().ok().map(|c| c.uid()),
            tls: false,
        }
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer {
            uid: None,
            tls: false,
        }
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, crate::tls::TlsListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, crate::tls::TlsListener>) -> Peer {
        Peer {
            uid: None,
            tls: true,
        }
    }
}

/// What a route needs of its caller; each role is granted the accesses up to its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Reading (any role).
    Read,
    /// Running the tenant's workloads (operator and up).
    Operate,
    /// Managing the tenant's users and tokens, reading its audit log (tenant owner and up).
    Owner,
    /// The platform: tenants, quotas, shared images and templates (admin).
    Admin,
}

impl Access {
    /// Whether `role` is granted this access.
    pub fn granted(self, role: Role) -> bool {
        let top = match role {
            Role::ReadOnly => Access::Read,
            Role::Operator => Access::Operate,
            Role::TenantOwner => Access::Owner,
            Role::Admin => Access::Admin,
        };
        self <= top
    }
}

/// Names principals take that no user may: the local superuser, the admin token, no one.
pub const RESERVED_NAMES: &[&str] = &["root", "admin", "anonymous"];

/// The principal of a request, as handlers see it.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// The tenant whose rows this caller sees; `None` (every tenant) for an admin.
    pub fn scope(&self) -> Option<&str> {
        match self.0.role {
            Role::Admin => None,
            _ => Some(&self.0.tenant),
        }
    }

    /// The tenant new resources go to.
    pub fn tenant(&self) -> &str {
        &self.0.tenant
    }

    /// Whether the caller may name host paths (a rootfs directory).
    pub fn may_use_host_paths(&self) -> bool {
        self.0.role == Role::Admin
    }

    /// The caller's role.
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// The user the caller acts as; `None` for root and the admin token.
    pub fn user(&self) -> Option<&str> {
        Some(self.0.id.as_str()).filter(|u| !RESERVED_NAMES.contains(u))
    }
}

/// The access a request needs: its route's, from the route table. A path no route matches
/// needs reading (it is answered 404), as does a method the path does not take (405).
fn access(method: &Method, route: Option<&str>) -> Access {
    let m = if method == Method::HEAD {
        "get".to_string()
    } else {
        method.as_str().to_ascii_lowercase()
    };
    route
        .and_then(|r| {
            crate::api::ROUTES
                .iter()
                .find(|(rm, rp, _)| *rm == m && *rp == r)
        })
        .map_or(Access::Read, |(_, _, a)| *a)
}

/// Percent-decodes a path segment as the router does for its parameters.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first parameter of `route` as `path` gives it: (the route's prefix, the value).
fn first_param<'a>(route: &'a str, path: &str) -> Option<(&'a str, String)> {
    let at = route.find('{')?;
    let prefix = &route[..at];
    let rest = path.strip_prefix(prefix)?;
    let value = rest.split('/').next()?;
    Some((prefix, decode(value)))
}

/// The tenant owning the resource the path names, after checking the caller may see it: 404
/// when it may not, as when it does not exist. `None` for paths that name no tenant's resource
/// (shared templates, collections) or resources that do not exist (for an admin,
/// the handler answers). A new kind of tenant resource adds its lookup here: the tenancy test
/// walks every route and fails on a parameter it cannot name a resource of another tenant for.
fn owner_of(app: &App, caller: &Caller, route: &str, path: &str) -> ApiResult<Option<String>> {
    let Some((prefix, value)) = first_param(route, path) else {
        return Ok(None);
    };
    let scope = caller.scope();
    if prefix == "/v1/images/" {
        // A tenant sees its own images and the shared ones; the handler resolves an admin's.
        return match scope {
            None => Ok(None),
            Some(t) => match app.storage.find_image(Some(t), &value) {
                Some(f) => Ok(f.owner),
                None => Err(ApiError::not_found("image", &value)),
            },
        };
    }
    let conn = app.db.lock();
    let one = |sql: &str| -> rusqlite::Result<Option<String>> {
        let mut st = conn.prepare_cached(sql)?;
        let found: Vec<String> = st
            .query_map(params![value, scope], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        // A name several tenants use names none of them in particular (for an admin).
        Ok(if found.len() == 1 {
            found.into_iter().next()
        } else {
            None
        })
    };
    let (kind, tenant): (&str, Option<String>) = match prefix {
        "/v1/containers/" => (
            "container",
            crate::db::find(&conn, scope, &value)?.map(|r| r.c.tenant),
        ),
        "/v1/tenants/" => (
            "tenant",
            conn.query_row("SELECT id FROM tenants WHERE id = ?1", [&value], |r| {
                r.get(0)
            })
            .optional()?,
        ),
        "/v1/networks/" => ("network", app.network.owner(&value)),
        "/v1/users/" => (
            "user",
            one("SELECT tenant_id FROM users WHERE name = ?1 AND (?2 IS NULL OR tenant_id = ?2)")?,
        ),
        "/v1/tokens/" => {
            let t: Option<(String, Option<String>)> = conn
                .query_row(
                    "SELECT t.tenant_id, u.name FROM tokens t LEFT JOIN users u ON u.id = t.user_id
                     WHERE t.id = ?1",
                    [&value],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            // Below tenant owner, a principal sees only its own tokens.
            let mine = |u: &Option<String>| {
                caller.role() >= Role::TenantOwner || u.as_deref() == caller.user()
            };
            ("token", t.filter(|(_, u)| mine(u)).map(|(t, _)| t))
        }
        _ => return Ok(None),
    };
    match (scope, tenant) {
        (Some(s), Some(t)) if s != t => Err(ApiError::not_found(kind, &value)),
        (Some(_), None) => Err(ApiError::not_found(kind, &value)),
        (_, t) => Ok(t),
    }
}

/// The middleware: authenticate, authorise, hand the [`Caller`] to the handler, audit.
pub async fn layer(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let need = if route.is_none() && matches!(req.uri().path(), "/health" | "/openapi.json") {
        Access::Public
    } else {
        access(req.method(), route.as_deref())
    };
    if need == Access::Public {
        return next.run(req).await;
    }
    let t0 = std::time::Instant::now();
    let path = req.uri().path().to_string();
    let mut rec = Record::new(req.method(), route.as_deref().unwrap_or(&path), &path);
    // Every request that may change something is audited: those beyond reading but for
    // privileged reads (a GET that needs more than an operator, like the audit log). A GET that
    // needs an operator acts (the console's exec over a WebSocket).
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let audited = need > Access::Read && (!get || need == Access::Operate);
    let peer = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.clone());
    let bearer = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let principal = match bearer {
        Some(token) => match lookup_hash(&app, &hash(&token)) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(ApiError::unauthorized("the token is not valid")),
            Err(e) => Err(ApiError::internal(e.to_string())),
        },
        // A browser of the dashboard, with its session cookie.
        None => match crate::web::cookie_principal(&app, &req) {
            Some(r) => r,
            None if matches!(peer, Some(Peer { uid: Some(0), .. })) => Ok(Principal {
                id: "root".into(),
                tenant: DEFAULT_TENANT.into(),
                role: Role::Admin,
                token: None,
            }),
            None => Err(ApiError::unauthorized(
                "send a token: Authorization: Bearer TOKEN (CONDO_TOKEN, or condo login)",
            )),
        },
    };
    let decided = principal.and_then(|p| {
        let caller = Caller(p);
        rec.principal(&caller.0);
        if !need.granted(caller.role()) {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" may not {} {path}",
                caller.role(),
                caller.0.id,
                req.method()
            )));
        }
        if let Some(t) = match route.as_deref() {
            Some(r) => owner_of(&app, &caller, r, &path)?,
            None => None,
        } {
            rec.tenant = t;
        }
        Ok(caller)
    });
    let caller = match decided {
        Ok(c) => c,
        Err(e) => {
            return finish(
                &app,
                audited.then_some(rec),
                e.into_response(),
                t0.elapsed(),
            )
            .await
        }
    };
    req.extensions_mut().insert(caller);
    let decided = t0.elapsed();
    let resp = next.run(req).await;
    finish(&app, audited.then_some(rec), resp, decided).await
}

/// Audits the answer when `rec` is given, and says in a `Server-Timing` header what the
/// checks took (`auth`: authentication and authorisation) and what writing the audit row took
/// (`audit`), in milliseconds: what the access layer adds to each request, seen by any client.
async fn finish(
    app: &App,
    rec: Option<Record>,
    resp: Response,
    auth: std::time::Duration,
) -> Response {
    let audited = rec.is_some();
    let t = std::time::Instant::now();
    let mut resp = audit::answer(app, rec, resp).await;
    let mut timing = format!("auth;dur={:.3}", auth.as_secs_f64() * 1e3);
    if audited {
        timing.push_str(&format!(
            ", audit;dur={:.3}",
            t.elapsed().as_secs_f64() * 1e3
        ));
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&timing) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// Hex SHA-256 of a token.
pub fn hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token's row: id, tenant, its own role, its user's name and role.
type TokenRow = (String, String, String, Option<String>, Option<String>);

/// The principal of the live token whose hash is `hash`.
pub fn lookup_hash(app: &App, hash: &str) -> rusqlite::Result<Option<Principal>> {
    let now = condo_runtime::state::now_rfc3339();
    let row: Option<TokenRow> = app
        .db
        .lock()
        .query_row(
            "SELECT t.id, t.tenant_id, t.role, u.name, u.role FROM tokens t
             LEFT JOIN users u ON u.id = t.user_id
             WHERE t.hash = ?1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?2)",
            params![hash, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((id, tenant, token_role, user, user_role)) = row else {
        return Ok(None);
    };
    // A user's token acts with the user's role as it is now; a role we do not know grants nothing.
    let role = match (&user, user_role) {
        (Some(_), Some(r)) => Role::parse(&r),
        (Some(_), None) => None,
        (None, _) => Role::parse(&token_role),
    };
    Ok(role.map(|role| Principal {
        id: user.unwrap_or_else(|| id.clone()),
        tenant,
        role,
        token: Some(id),
    }))
}

/// Random bytes as hex, from the kernel.
pub fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("/dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes the admin token at first start: written to `path` (mode 0600), stored hashed.
pub fn ensure_admin_token(db: &crate::db::Db, path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let conn = db.lock();
    let have: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = 'admin')",
        [],
        |r| r.get(0),
    )?;
    if have && path.exists() {
        return Ok(());
    }
    let token = format!("condo_{}", random_hex(24)?);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())?;
    conn.execute(
        "INSERT INTO tokens (id, tenant_id, role, name, hash, created_at) VALUES ('admin', ?1, 'admin', 'admin', ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, revoked_at = NULL",
        params![DEFAULT_TENANT, hash(&token), condo_runtime::state::now_rfc3339()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_accesses_up_to_their_own() {
        assert!(Access::Read.granted(Role::ReadOnly));
        assert!(!Access::Operate.granted(Role::ReadOnly));
        assert!(Access::Operate.granted(Role::Operator));
        assert!(!Access::Owner.granted(Role::Operator));
        assert!(Access::Owner.granted(Role::TenantOwner));
        assert!(!Access::Admin.granted(Role::TenantOwner));
        assert!(Access::Admin.granted(Role::Admin));
    }

    #[test]
    fn routes_have_their_access() {
        assert_eq!(access(&Method::GET, Some("/v1/containers")), Access::Read);
        assert_eq!(access(&Method::HEAD, Some("/v1/containers")), Access::Read);
        assert_eq!(
            access(&Method::POST, Some("/v1/containers/{id}/stop")),
            Access::Operate
        );
        assert_eq!(access(&Method::POST, Some("/v1/tenants")), Access::Admin);
        assert_eq!(access(&Method::POST, None), Access::Read);
        // Every route that changes something needs more than reading, but for waiting.
        for (m, p, a) in crate::api::ROUTES {
            if *m != "get" && *p != "/v1/containers/{id}/wait" {
                assert!(*a > Access::Read, "{m} {p} is open to read-only principals");
            }
        }
    }

    #[test]
    fn params_are_found_and_decoded() {
        assert_eq!(
            first_param("/v1/containers/{id}/logs", "/v1/containers/a%20b/logs"),
            Some(("/v1/containers/", "a b".to_string()))
        );
        assert_eq!(first_param("/v1/containers", "/v1/containers"), None);
        assert_eq!(decode("%zz%41"), "%zzA");
    }
}
