//! `/v1/tenants`: the admin makes tenants and sets their quotas; each tenant reads its own,
//! with what it uses.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::{Quota, Tenant, TenantCreate, Usage};
use rusqlite::{params, Connection, OptionalExtension};

use crate::auth::Caller;
use crate::db::DEFAULT_TENANT;
use crate::error::{ApiError, ApiResult, Body};
use crate::quota::{self, QUOTA_COLUMNS};
use crate::App;

/// Whether `n` may name a tenant or a user.
pub fn valid_name(n: &str) -> bool {
    n.len() <= 63 && super::containers::valid_name(n)
}

/// A 400 for a name that is not one.
pub fn bad_name(field: &str, n: &str) -> ApiError {
    ApiError::invalid(
        field,
        format!(
            "{field} \"{n}\": use letters, digits and _ . - (a letter or digit first, at most 63)"
        ),
    )
}

/// Tenant `id` with its quota and usage (its networks counted by `networks`).
pub fn view(
    conn: &Connection,
    networks: &crate::network::Hub,
    id: &str,
) -> rusqlite::Result<Option<Tenant>> {
    let row: Option<(String, String, String, Quota)> = conn
        .query_row(
            &format!("SELECT id, name, created_at, {QUOTA_COLUMNS} FROM tenants WHERE id = ?1"),
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, quota::quota_of(r, 3)?)),
        )
        .optional()?;
    let Some((id, name, created_at, quota)) = row else {
        return Ok(None);
    };
    let usage = Usage {
        networks: networks.networks_of(&id),
        ..quota::usage(conn, &id)?
    };
    Ok(Some(Tenant {
        id,
        name,
        created_at,
        quota,
        usage,
    }))
}

/// `GET /v1/tenants`.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<Tenant>>> {
    let conn = app.db.lock();
    let ids: Vec<String> = {
        let mut st = conn.prepare_cached(
            "SELECT id FROM tenants WHERE (?1 IS NULL OR id = ?1) ORDER BY created_at, id",
        )?;
        let rows = st.query_map(params![caller.scope()], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(view(&conn, &app.network, &id)?);
    }
    Ok(Json(out))
}

/// `POST /v1/tenants`.
pub async fn create(
    State(app): State<Arc<App>>,
    Body(b): Body<TenantCreate>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    if !valid_name(&b.name) {
        return Err(bad_name("name", &b.name));
    }
    quota::check(&b.quota, "quota.")?;
    let mut conn = app.db.lock();
    let tx = conn.transaction()?;
    let made = tx.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?1, ?2)",
        params![b.name, condo_runtime::state::now_rfc3339()],
    );
    match made {
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(ApiError::conflict(format!(
                "tenant \"{}\" already exists",
                b.name
            )));
        }
        r => r?,
    };
    quota::set(&tx, &b.name, &b.quota)?;
    let t = view(&tx, &app.network, &b.name)?
        .ok_or_else(|| ApiError::internal("the new tenant is gone"))?;
    tx.commit()?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// `GET /v1/tenants/{name}`.
pub async fn show(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Tenant>> {
    view(&app.db.lock(), &app.network, &name)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("tenant", &name))
}

/// `POST /v1/tenants/{name}/quota`: the body replaces the quota; what is above a lowered quota
/// stays, and only new claims are refused, but for monthly traffic, whose quota stops (or lets
/// through again) the tenant's traffic at once.
pub async fn set_quota(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Body(q): Body<Quota>,
) -> ApiResult<Json<Tenant>> {
    quota::check(&q, "")?;
    if !quota::set(&app.db.lock(), &name, &q)? {
        return Err(ApiError::not_found("tenant", &name));
    }
    // A monthly traffic quota raised (or lowered) takes effect at once.
    let a = app.clone();
    tokio::task::spawn_blocking(move || crate::network::account(&a, &a.network.monthly_usage()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    view(&app.db.lock(), &app.network, &name)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("tenant", &name))
}

/// `DELETE /v1/tenants/{name}`: an empty tenant goes with its users and tokens.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if name == DEFAULT_TENANT {
        return Err(ApiError::conflict("the default tenant stays"));
    }
    let mut conn = app.db.lock();
    let tx = conn.transaction()?;
    let Some(t) = view(&tx, &app.network, &name)? else {
        return Err(ApiError::not_found("tenant", &name));
    };
    if t.usage.containers > 0 || t.usage.networks > 0 {
        return Err(ApiError::conflict(format!(
            "tenant \"{name}\" still has {} containers and {} networks: delete them first",
            t.usage.containers, t.usage.networks
        )));
    }
    // Its own images go with it (their blobs at the next collection), and its traffic record.
    app.storage
        .images
        .remove_scope(&name)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    tx.execute("DELETE FROM tenant_images WHERE tenant_id = ?1", [&name])?;
    tx.execute("DELETE FROM traffic WHERE tenant_id = ?1", [&name])?;
    tx.execute("DELETE FROM tokens WHERE tenant_id = ?1", [&name])?;
    tx.execute("DELETE FROM users WHERE tenant_id = ?1", [&name])?;
    // A tenant made again under this name must not read the old one's events.
    tx.execute("DELETE FROM events WHERE tenant_id = ?1", [&name])?;
    tx.execute("DELETE FROM tenants WHERE id = ?1", [&name])?;
    tx.commit()?;
    Ok(StatusCode::NO_CONTENT)
}
