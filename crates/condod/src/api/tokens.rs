//! `/v1/tokens`: API tokens of users. The secret is shown once, when made; only its SHA-256
//! is kept. A token acts as its user with the user's role, until it expires or is revoked.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::{Role, Token, TokenCreate, TokenCreated};
use rusqlite::{params, OptionalExtension, Row};

use super::users::tenant_for;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body};
use crate::App;

/// The longest life a token may be given: ten years.
const MAX_LIFE: u64 = 10 * 366 * 86400;

const SELECT: &str = "SELECT t.id, t.name, u.name, t.tenant_id, COALESCE(u.role, t.role),
    t.created_at, t.expires_at, t.revoked_at FROM tokens t LEFT JOIN users u ON u.id = t.user_id";

fn row(r: &Row<'_>) -> rusqlite::Result<Token> {
    let role: String = r.get(4)?;
    Ok(Token {
        id: r.get(0)?,
        name: r.get(1)?,
        user: r.get(2)?,
        tenant: r.get(3)?,
        role: Role::parse(&role).unwrap_or(Role::ReadOnly),
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// `GET /v1/tokens`: an admin sees every token, a tenant owner its tenant's, anyone else its own.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<Token>>> {
    let all = super::flag(&q, "all")?;
    let own = caller.role() < Role::TenantOwner;
    let user = if own {
        // Root and the admin token have no user; below owner everyone has one.
        Some(caller.user().unwrap_or_default().to_string())
    } else {
        q.get("user").cloned()
    };
    let now = condo_runtime::state::now_rfc3339();
    let conn = app.db.lock();
    let mut st = conn.prepare_cached(&format!(
        "{SELECT} WHERE (?1 IS NULL OR t.tenant_id = ?1) AND (?2 IS NULL OR u.name = ?2)
         AND (?3 OR (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?4)))
         ORDER BY t.created_at, t.id"
    ))?;
    let rows = st.query_map(params![caller.scope(), user, all, now], row)?;
    Ok(Json(rows.collect::<rusqlite::Result<_>>()?))
}

/// `POST /v1/tokens`.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(b): Body<TokenCreate>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    if let Some(n) = &b.name {
        if n.is_empty() || n.len() > 128 || n.contains(|c: char| c.is_control()) {
            return Err(ApiError::invalid(
                "name",
                "name: 1 to 128 characters, no control characters",
            ));
        }
    }
    if matches!(b.expires_in, Some(s) if s == 0 || s > MAX_LIFE) {
        return Err(ApiError::invalid(
            "expires_in",
            format!("expires_in: seconds, 1 to {MAX_LIFE} (ten years)"),
        ));
    }
    let tenant = tenant_for(&caller, b.tenant.as_ref())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let created_at = condo_runtime::state::rfc3339(now.as_secs() as i64, now.subsec_nanos());
    let expires_at = b
        .expires_in
        .map(|s| condo_runtime::state::rfc3339((now.as_secs() + s) as i64, now.subsec_nanos()));
    let secret = format!(
        "condo_{}",
        crate::auth::random_hex(24).map_err(|e| ApiError::internal(e.to_string()))?
    );
    let id = format!(
        "tok-{}",
        crate::auth::random_hex(6).map_err(|e| ApiError::internal(e.to_string()))?
    );
    let conn = app.db.lock();
    let u = super::users::find(&conn, tenant.as_deref(), &b.user)?;
    if u.user.role > caller.role() {
        return Err(ApiError::forbidden(format!(
            "a {} may not make tokens for a user with the role {}",
            caller.role(),
            u.user.role
        )));
    }
    let name = b.name.clone().unwrap_or_else(|| u.user.name.clone());
    conn.execute(
        "INSERT INTO tokens (id, tenant_id, role, name, hash, created_at, expires_at, user_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            u.user.tenant,
            u.user.role.as_str(),
            name,
            crate::auth::hash(&secret),
            created_at,
            expires_at,
            u.id
        ],
    )?;
    let token = conn.query_row(&format!("{SELECT} WHERE t.id = ?1"), [&id], row)?;
    Ok((StatusCode::CREATED, Json(TokenCreated { secret, token })))
}

/// `DELETE /v1/tokens/{id}`: revokes; the token stays listed (with `all`) as revoked.
pub async fn revoke(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let conn = app.db.lock();
    let t = conn
        .query_row(
            &format!("{SELECT} WHERE t.id = ?1 AND (?2 IS NULL OR t.tenant_id = ?2)"),
            params![id, caller.scope()],
            row,
        )
        .optional()?
        .ok_or_else(|| ApiError::not_found("token", &id))?;
    if t.id == "admin" {
        return Err(ApiError::conflict(
            "the admin token is renewed, not revoked: delete admin.token under the daemon's root and restart condod",
        ));
    }
    if t.role > caller.role() {
        return Err(ApiError::forbidden(format!(
            "a {} may not revoke a token with the role {}",
            caller.role(),
            t.role
        )));
    }
    conn.execute(
        "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![id, condo_runtime::state::now_rfc3339()],
    )?;
    Ok(StatusCode::NO_CONTENT)
}
