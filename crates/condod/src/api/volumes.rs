//! `/v1/volumes`: named volumes — create, list, inspect, remove (not while in use, unless
//! forced), prune.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::{Volume, VolumeCreate, VolumesPruned};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body};
use crate::volumes::{self, VolumeRow};
use crate::App;

fn find(app: &App, caller: &Caller, name: &str) -> ApiResult<VolumeRow> {
    volumes::find(app, &app.db.lock(), caller.scope(), caller.tenant(), name)?
        .ok_or_else(|| ApiError::not_found("volume", name))
}

/// The wire view with its users (and, when asked, its size). Where the data lives on the host
/// is shown to the admin only: it tells a tenant nothing it can use and something of the host.
async fn view(app: &Arc<App>, caller: &Caller, row: VolumeRow, size: bool) -> ApiResult<Volume> {
    let mut v = row.v;
    if !caller.may_use_host_paths() {
        v.mountpoint = None;
    }
    v.used_by = volumes::users(&app.db.lock(), &v.tenant, &v.name)?
        .into_iter()
        .map(|u| u.0)
        .collect();
    if size {
        let dir = volumes::data_dir(app, &row.id);
        v.size = Some(
            tokio::task::spawn_blocking(move || volumes::disk_usage(&dir))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?,
        );
    }
    Ok(v)
}

/// `GET /v1/volumes`.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<Volume>>> {
    let rows = volumes::list(&app, &app.db.lock(), caller.scope())?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(view(&app, &caller, r, false).await?);
    }
    Ok(Json(out))
}

/// `POST /v1/volumes`.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(b): Body<VolumeCreate>,
) -> ApiResult<(StatusCode, Json<Volume>)> {
    let name = match b.name {
        Some(n) if super::valid_name(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(
                "name",
                format!("name \"{n}\": use letters, digits and _ . - (a letter or digit first, at most 128)"),
            ))
        }
        None => crate::auth::random_hex(8).map_err(|e| ApiError::internal(e.to_string()))?,
    };
    if let Some(k) = b.labels.keys().find(|k| k.is_empty()) {
        return Err(ApiError::invalid(
            "labels",
            format!("labels: the key \"{k}\" is empty"),
        ));
    }
    let (row, ev) = volumes::create(&app, caller.tenant(), &name, &b.labels)?;
    app.emit(ev);
    Ok((
        StatusCode::CREATED,
        Json(view(&app, &caller, row, false).await?),
    ))
}

/// `GET /v1/volumes/{name}`.
pub async fn inspect(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Volume>> {
    let row = find(&app, &caller, &name)?;
    Ok(Json(view(&app, &caller, row, true).await?))
}

/// `DELETE /v1/volumes/{name}`: refused while containers mount it, unless forced; never while
/// one of them runs.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let force = super::flag(&q, "force")?;
    let row = find(&app, &caller, &name)?;
    let users = volumes::users(&app.db.lock(), &row.v.tenant, &row.v.name)?;
    if let Some((c, _)) = users.iter().find(|u| u.1) {
        return Err(ApiError::conflict(format!(
            "volume \"{name}\" is mounted by running container \"{c}\": stop it first"
        )));
    }
    if !users.is_empty() && !force {
        let list: Vec<&str> = users.iter().map(|u| u.0.as_str()).collect();
        return Err(ApiError::conflict(format!(
            "volume \"{name}\" is used by container(s) {}: remove them first or delete with force",
            list.join(", ")
        )));
    }
    let ev = volumes::remove(&app, &row)?;
    app.emit(ev);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/volumes/prune`: removes the caller's volumes that no container mounts.
pub async fn prune(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<VolumesPruned>> {
    let tenant = caller.tenant().to_string();
    let rows = volumes::list(&app, &app.db.lock(), Some(&tenant))?;
    let mut out = VolumesPruned::default();
    for r in rows {
        if !volumes::users(&app.db.lock(), &tenant, &r.v.name)?.is_empty() {
            continue;
        }
        let dir = volumes::data_dir(&app, &r.id);
        out.bytes += tokio::task::spawn_blocking(move || volumes::disk_usage(&dir))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let ev = volumes::remove(&app, &r)?;
        app.emit(ev);
        out.volumes.push(r.v.name);
    }
    Ok(Json(out))
}
