//! Who makes each request, and what they may do: the one authorisation layer of the API.
//!
//! A request on the unix socket from a root peer is the admin. Any other request needs
//! `Authorization: Bearer TOKEN`; tokens are stored as SHA-256 hashes. The middleware puts the
//! [`Caller`] into the request; handlers scope every lookup by [`Caller::scope`], so a tenant
//! never sees another tenant's rows (it gets 404, not 403, so nothing leaks).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use condo_api::{Principal, Role};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::db::DEFAULT_TENANT;
use crate::error::ApiError;
use crate::App;

/// How a connection reached us.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's uid on the unix socket; `None` over TCP.
    pub uid: Option<u32>,
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, tokio::net::UnixListener>) -> Peer {
        Peer {
            uid: s.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer { uid: None }
    }
}

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
}

/// Paths anyone may read.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/openapi.json")
}

/// What each role may do: read-only reads, an operator also drives the lifecycle, an owner also
/// creates and deletes within its tenant, the admin does everything.
fn allowed(role: Role, method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    match role {
        Role::Admin | Role::TenantOwner => true,
        Role::ReadOnly => false,
        Role::Operator => {
            let creates = method == Method::POST && path.trim_end_matches('/') == "/v1/containers";
            !(creates || method == Method::DELETE)
        }
    }
}

/// The middleware: authenticate, authorise, and hand the [`Caller`] to the handler.
pub async fn layer(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_public(&path) {
        return next.run(req).await;
    }
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
            Ok(Some(p)) => p,
            Ok(None) => return ApiError::unauthorized("the token is not valid").into_response(),
            Err(e) => return ApiError::internal(e.to_string()).into_response(),
        },
        None => match crate::web::cookie_principal(&app, &req) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return e.into_response(),
            None if matches!(peer, Some(Peer { uid: Some(0) })) => Principal {
                id: "root".into(),
                tenant: DEFAULT_TENANT.into(),
                role: Role::Admin,
            },
            None => {
                return ApiError::unauthorized(
                    "send a token: Authorization: Bearer TOKEN (CONDO_TOKEN)",
                )
                .into_response()
            }
        },
    };
    if !allowed(principal.role, req.method(), &path) {
        return ApiError::forbidden(format!(
            "principal \"{}\" may not {} {path}",
            principal.id,
            req.method()
        ))
        .into_response();
    }
    req.extensions_mut().insert(Caller(principal));
    next.run(req).await
}

/// Hex SHA-256 of a token.
pub fn hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The principal of the live token whose hash is `hash`.
pub fn lookup_hash(app: &App, hash: &str) -> rusqlite::Result<Option<Principal>> {
    let now = condo_runtime::state::now_rfc3339();
    app.db
        .lock()
        .query_row(
            "SELECT id, tenant_id, role FROM tokens WHERE hash = ?1 AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > ?2)",
            params![hash, now],
            |r| {
                let role: String = r.get(2)?;
                Ok(Principal {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    role: serde_json::from_value(serde_json::Value::String(role))
                        .unwrap_or(Role::ReadOnly),
                })
            },
        )
        .optional()
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
    fn roles() {
        assert!(allowed(Role::ReadOnly, &Method::GET, "/v1/containers"));
        assert!(!allowed(
            Role::ReadOnly,
            &Method::POST,
            "/v1/containers/x/start"
        ));
        assert!(allowed(
            Role::Operator,
            &Method::POST,
            "/v1/containers/x/start"
        ));
        assert!(!allowed(Role::Operator, &Method::POST, "/v1/containers"));
        assert!(!allowed(
            Role::Operator,
            &Method::DELETE,
            "/v1/containers/x"
        ));
        assert!(allowed(
            Role::TenantOwner,
            &Method::DELETE,
            "/v1/containers/x"
        ));
    }
}
