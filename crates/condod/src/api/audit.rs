//! The audit log: the authorisation layer records every mutating request here (who, which
//! tenant, what, how it ended, when), and `GET /v1/audit` reads it back with filters.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, Method};
use axum::response::Response;
use axum::{Extension, Json};
use condo_api::{AuditEntry, Principal};
use rusqlite::params;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::App;

/// Largest answer body read to learn a created resource's id or an error's message.
const PEEK_LIMIT: u64 = 64 << 10;

/// Set on an answer (as a response extension) about an ephemeral container: its audit row is
/// written without waiting for the disk, like the container's own state (see `db::lazily`).
#[derive(Debug, Clone, Copy)]
pub struct Lazy;

/// The marker for an answer about a container that is `ephemeral`, or nothing.
pub fn lazy_if(ephemeral: bool) -> Option<axum::Extension<Lazy>> {
    ephemeral.then_some(axum::Extension(Lazy))
}

/// One request on its way to the log.
#[derive(Debug, Clone)]
pub struct Record {
    principal: String,
    token: Option<String>,
    /// The tenant whose resource it is (the principal's until the path names another's).
    pub tenant: String,
    method: String,
    route: String,
    path: String,
}

impl Record {
    /// A request by no one yet known.
    pub fn new(method: &Method, route: &str, path: &str) -> Record {
        Record {
            principal: "anonymous".into(),
            token: None,
            tenant: String::new(),
            method: method.as_str().to_string(),
            route: route.to_string(),
            path: path.to_string(),
        }
    }

    /// Who made it.
    pub fn principal(&mut self, p: &Principal) {
        self.principal = p.id.clone();
        self.token = p.token.clone();
        self.tenant = p.tenant.clone();
    }
}

/// What a small JSON answer says.
#[derive(Debug, Default, PartialEq)]
struct Peeked {
    /// The id (or name) of what a create made.
    id: Option<String>,
    /// The tenant it went to.
    tenant: Option<String>,
    /// An error's message.
    message: Option<String>,
}

fn peek(status: u16, route: &str, body: &[u8]) -> Peeked {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Peeked::default();
    };
    if status >= 400 {
        return Peeked {
            message: v["message"].as_str().map(String::from),
            ..Default::default()
        };
    }
    let first =
        |xs: [&serde_json::Value; 3]| xs.into_iter().find_map(|x| x.as_str().map(String::from));
    let id = first([&v["id"], &v["name"], &v["token"]["id"]]);
    // A new tenant is its own resource.
    let tenant = if route == "/v1/tenants" {
        id.clone()
    } else {
        first([
            &v["tenant"],
            &v["token"]["tenant"],
            &serde_json::Value::Null,
        ])
    };
    Peeked {
        id,
        tenant,
        message: None,
    }
}

/// Records `rec` (when there is one) with how `resp` ended, and hands `resp` on.
pub async fn answer(app: &App, rec: Option<Record>, resp: Response) -> Response {
    let Some(rec) = rec else {
        return resp;
    };
    let status = resp.status().as_u16();
    let lazy = resp.extensions().get::<Lazy>().is_some();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let small = axum::body::HttpBody::size_hint(resp.body())
        .exact()
        .is_some_and(|n| n <= PEEK_LIMIT);
    let (resp, seen) = if json && small && (status == 201 || status >= 400) {
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, PEEK_LIMIT as usize)
            .await
            .unwrap_or_default();
        let seen = peek(status, &rec.route, &bytes);
        (
            Response::from_parts(parts, axum::body::Body::from(bytes)),
            seen,
        )
    } else {
        (resp, Peeked::default())
    };
    let resource = match &seen.id {
        Some(id) => format!("{}/{id}", rec.path.trim_end_matches('/')),
        None => rec.path.clone(),
    };
    let tenant = seen.tenant.unwrap_or(rec.tenant);
    let message = seen.message;
    let result = match status {
        401 | 403 => "denied",
        s if s >= 400 => "error",
        _ => "ok",
    };
    let stored = crate::db::lazily(&mut app.db.lock(), lazy, |conn| {
        conn.execute(
        "INSERT INTO audit (time, principal, token_id, tenant_id, method, route, resource, status, result, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            condo_runtime::state::now_rfc3339(),
            rec.principal,
            rec.token,
            tenant,
            rec.method,
            rec.route,
            resource,
            status,
            result,
            message
        ],
    )
    });
    if let Err(e) = stored {
        tracing::error!("cannot write the audit log: {e}");
    }
    resp
}

/// An RFC 3339 time as stored, from RFC 3339 or seconds since the epoch.
fn time_param(q: &HashMap<String, String>, name: &str) -> ApiResult<Option<String>> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    let ns = crate::logs::parse_time(v).ok_or_else(|| {
        ApiError::invalid(
            name,
            format!(
                "{name} \"{v}\": use RFC 3339 (2026-01-02T15:04:05Z) or seconds since the epoch"
            ),
        )
    })?;
    Ok(Some(condo_runtime::state::rfc3339(
        (ns / 1_000_000_000) as i64,
        (ns % 1_000_000_000) as u32,
    )))
}

/// `GET /v1/audit`: an admin reads every tenant's entries, a tenant owner its own tenant's.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    const KNOWN: &[&str] = &[
        "tenant",
        "principal",
        "resource",
        "method",
        "result",
        "since",
        "until",
        "after",
        "limit",
    ];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k,
            format!("{k}: not a filter (use {})", KNOWN.join(", ")),
        ));
    }
    let tenant = match (caller.scope(), q.get("tenant")) {
        (Some(own), Some(t)) if t != own => return Ok(Json(Vec::new())),
        (Some(own), _) => Some(own.to_string()),
        (None, t) => t.cloned(),
    };
    if let Some(r) = q.get("result") {
        if !matches!(r.as_str(), "ok" | "denied" | "error") {
            return Err(ApiError::invalid(
                "result",
                format!("result \"{r}\": use ok, denied or error"),
            ));
        }
    }
    let number = |name: &str, max: i64| -> ApiResult<Option<i64>> {
        q.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| (0..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(name, format!("{name} \"{v}\": a number, 0 to {max}"))
                    })
            })
            .transpose()
    };
    let after = number("after", i64::MAX)?.unwrap_or(0);
    let limit = number("limit", 10_000)?.unwrap_or(1000);
    let since = time_param(&q, "since")?;
    let until = time_param(&q, "until")?;
    let method = q.get("method").map(|m| m.to_ascii_uppercase());
    let conn = app.db.lock();
    // The newest `limit` entries that match, oldest first.
    let mut st = conn.prepare_cached(
        "SELECT * FROM (
            SELECT seq, time, principal, token_id, tenant_id, method, route, resource, status,
                   result, message
            FROM audit
            WHERE seq > ?1 AND (?2 IS NULL OR tenant_id = ?2) AND (?3 IS NULL OR principal = ?3)
              AND (?4 IS NULL OR substr(resource, 1, length(?4)) = ?4)
              AND (?5 IS NULL OR method = ?5) AND (?6 IS NULL OR result = ?6)
              AND (?7 IS NULL OR time >= ?7) AND (?8 IS NULL OR time < ?8)
            ORDER BY seq DESC LIMIT ?9
         ) ORDER BY seq",
    )?;
    let rows = st.query_map(
        params![
            after,
            tenant,
            q.get("principal"),
            q.get("resource"),
            method,
            q.get("result"),
            since,
            until,
            limit
        ],
        |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                time: r.get(1)?,
                principal: r.get(2)?,
                token: r.get(3)?,
                tenant: r.get(4)?,
                method: r.get(5)?,
                route: r.get(6)?,
                resource: r.get(7)?,
                status: r.get(8)?,
                result: r.get(9)?,
                message: r.get(10)?,
            })
        },
    )?;
    let out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_peeked() {
        let p = peek(
            201,
            "/v1/containers",
            br#"{"id": "abc", "name": "web", "tenant": "t"}"#,
        );
        assert_eq!(
            (p.id.as_deref(), p.tenant.as_deref()),
            (Some("abc"), Some("t"))
        );
        let p = peek(
            201,
            "/v1/tokens",
            br#"{"secret": "s", "token": {"id": "t1", "tenant": "a"}}"#,
        );
        assert_eq!(
            (p.id.as_deref(), p.tenant.as_deref()),
            (Some("t1"), Some("a"))
        );
        let p = peek(201, "/v1/tenants", br#"{"id": "acme", "name": "acme"}"#);
        assert_eq!(p.tenant.as_deref(), Some("acme"));
        let p = peek(404, "/v1/x", br#"{"code": "not_found", "message": "gone"}"#);
        assert_eq!((p.id, p.message.as_deref()), (None, Some("gone")));
        assert_eq!(peek(201, "/v1/x", b"not json"), Peeked::default());
    }
}
