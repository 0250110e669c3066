//! `/v1/users`: users of a tenant with their roles. A tenant owner manages its own tenant's
//! users; only an admin makes admins or works in another tenant.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::{Role, User, UserCreate, UserRole};
use rusqlite::{params, Connection, Row};

use super::tenants::{bad_name, valid_name};
use crate::auth::{Caller, RESERVED_NAMES};
use crate::error::{ApiError, ApiResult, Body};
use crate::App;

type Q = Query<HashMap<String, String>>;

/// A user row, with its id.
pub struct UserRow {
    /// Its id (tokens point at it).
    pub id: String,
    /// The wire view.
    pub user: User,
}

const COLUMNS: &str = "id, name, tenant_id, role, created_at";

fn row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let role: String = r.get(3)?;
    Ok(UserRow {
        id: r.get(0)?,
        user: User {
            name: r.get(1)?,
            tenant: r.get(2)?,
            role: Role::parse(&role).unwrap_or(Role::ReadOnly),
            created_at: r.get(4)?,
        },
    })
}

/// The tenant a request means: `asked` for an admin, else the caller's own (another tenant
/// named by a non-admin does not exist for it).
pub fn tenant_for(caller: &Caller, asked: Option<&String>) -> ApiResult<Option<String>> {
    match (caller.scope(), asked) {
        (Some(own), Some(t)) if t != own => Err(ApiError::not_found("tenant", t)),
        (Some(own), _) => Ok(Some(own.to_string())),
        (None, t) => Ok(t.cloned()),
    }
}

/// Finds user `name` in `tenant`, or (for an admin who named no tenant) in the only tenant that
/// has one by that name.
pub fn find(conn: &Connection, tenant: Option<&str>, name: &str) -> ApiResult<UserRow> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE name = ?1 AND (?2 IS NULL OR tenant_id = ?2) LIMIT 2"
    ))?;
    let mut found: Vec<UserRow> = st
        .query_map(params![name, tenant], row)?
        .collect::<rusqlite::Result<_>>()?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ApiError::not_found("user", name)),
        _ => Err(ApiError::invalid(
            "tenant",
            format!("user \"{name}\" is in several tenants: say which with tenant"),
        )),
    }
}

/// `GET /v1/users`.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Vec<User>>> {
    let tenant = match tenant_for(&caller, q.get("tenant")) {
        Ok(t) => t,
        Err(_) => return Ok(Json(Vec::new())),
    };
    let conn = app.db.lock();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id, name"
    ))?;
    let rows = st.query_map(params![tenant], row)?;
    Ok(Json(
        rows.map(|r| r.map(|r| r.user))
            .collect::<rusqlite::Result<_>>()?,
    ))
}

/// `POST /v1/users`.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(b): Body<UserCreate>,
) -> ApiResult<(StatusCode, Json<User>)> {
    if !valid_name(&b.name) {
        return Err(bad_name("name", &b.name));
    }
    if RESERVED_NAMES.contains(&b.name.as_str()) {
        return Err(ApiError::invalid(
            "name",
            format!("name \"{}\" is reserved", b.name),
        ));
    }
    if b.role > caller.role() {
        return Err(ApiError::forbidden(format!(
            "a {} may not make a user with the role {}",
            caller.role(),
            b.role
        )));
    }
    let tenant = tenant_for(&caller, b.tenant.as_ref())?.unwrap_or_else(|| caller.tenant().into());
    let id = crate::auth::random_hex(8).map_err(|e| ApiError::internal(e.to_string()))?;
    let user = User {
        name: b.name.clone(),
        tenant: tenant.clone(),
        role: b.role,
        created_at: condo_runtime::state::now_rfc3339(),
    };
    let conn = app.db.lock();
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
        [&tenant],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(ApiError::not_found("tenant", &tenant));
    }
    let made = conn.execute(
        "INSERT INTO users (id, tenant_id, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, tenant, user.name, user.role.as_str(), user.created_at],
    );
    match made {
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(ApiError::conflict(format!(
                "tenant \"{tenant}\" has a user \"{}\" already",
                user.name
            )))
        }
        r => {
            r?;
            Ok((StatusCode::CREATED, Json(user)))
        }
    }
}

/// `GET /v1/users/{name}`.
pub async fn show(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<User>> {
    let tenant =
        tenant_for(&caller, q.get("tenant")).map_err(|_| ApiError::not_found("user", &name))?;
    Ok(Json(find(&app.db.lock(), tenant.as_deref(), &name)?.user))
}

/// `DELETE /v1/users/{name}`: the user goes, and its tokens stop working.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Q,
) -> ApiResult<StatusCode> {
    let tenant =
        tenant_for(&caller, q.get("tenant")).map_err(|_| ApiError::not_found("user", &name))?;
    let mut conn = app.db.lock();
    let u = find(&conn, tenant.as_deref(), &name)?;
    if u.user.role > caller.role() {
        return Err(ApiError::forbidden(format!(
            "a {} may not remove a user with the role {}",
            caller.role(),
            u.user.role
        )));
    }
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM tokens WHERE user_id = ?1", [&u.id])?;
    tx.execute("DELETE FROM users WHERE id = ?1", [&u.id])?;
    tx.commit()?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/users/{name}/role`: no one gives or takes a role above its own.
pub async fn set_role(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Q,
    Body(b): Body<UserRole>,
) -> ApiResult<Json<User>> {
    let tenant =
        tenant_for(&caller, q.get("tenant")).map_err(|_| ApiError::not_found("user", &name))?;
    let conn = app.db.lock();
    let u = find(&conn, tenant.as_deref(), &name)?;
    let top = u.user.role.max(b.role);
    if top > caller.role() {
        return Err(ApiError::forbidden(format!(
            "a {} may not change the role of a user from {} to {}",
            caller.role(),
            u.user.role,
            b.role
        )));
    }
    conn.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        params![u.id, b.role.as_str()],
    )?;
    // The tokens' own column follows, for listings; lookups read the user's.
    conn.execute(
        "UPDATE tokens SET role = ?2 WHERE user_id = ?1",
        params![u.id, b.role.as_str()],
    )?;
    Ok(Json(User {
        role: b.role,
        ..u.user
    }))
}
