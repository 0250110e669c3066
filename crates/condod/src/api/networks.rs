//! `/v1/networks`: create, list, inspect and remove networks.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use condo_api::{Network, NetworkCreate};

use crate::auth::Caller;
use crate::error::{ApiResult, Body};
use crate::network::blocking;
use crate::App;

/// `GET /v1/networks`.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<Network>>> {
    Ok(Json(blocking(&app, move |h| h.list(&caller)).await?))
}

/// `POST /v1/networks`.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(b): Body<NetworkCreate>,
) -> ApiResult<impl IntoResponse> {
    let a = app.clone();
    let n = blocking(&app, move |h| {
        h.create(&caller, &b, |in_use| {
            crate::quota::admit_network(&a.db.lock(), caller.tenant(), in_use)
        })
    })
    .await??;
    Ok((StatusCode::CREATED, Json(n)))
}

/// `GET /v1/networks/{name}`.
pub async fn inspect(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Network>> {
    Ok(Json(blocking(&app, move |h| h.get(&caller, &name)).await??))
}

/// `DELETE /v1/networks/{name}`: refused while any container is configured with it.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let users: Vec<String> = crate::db::list(&app.db.lock(), None)?
        .into_iter()
        .filter(|r| crate::network::wanted(&r.c.config) == Some(name.as_str()))
        .map(|r| r.c.name)
        .collect();
    blocking(&app, move |h| h.remove(&caller, &name, &users)).await??;
    Ok(StatusCode::NO_CONTENT)
}
