//! Health, the OpenAPI document, system information, the caller's identity, and the answers
//! for unknown paths and methods.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use condo_api::{
    ContainerCounts, ContainerState, ErrorBody, ErrorCode, Health, Principal, SystemInfo,
};

use crate::auth::Caller;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::App;

/// `GET /health`.
pub async fn health(State(app): State<Arc<App>>) -> ApiResult<Json<Health>> {
    app.db.lock().query_row("SELECT 1", [], |_| Ok(()))?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        condo_api::openapi_json(),
    )
}

/// `GET /v1/whoami`.
pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<Principal> {
    Json(caller.0)
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn mem_total() -> u64 {
    read_trim("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `GET /v1/system/info`.
pub async fn info(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<SystemInfo>> {
    let rows = db::list(&app.db.lock(), caller.scope())?;
    let mut counts = ContainerCounts {
        total: rows.len() as u64,
        ..Default::default()
    };
    for r in &rows {
        match r.c.state {
            ContainerState::Running => counts.running += 1,
            ContainerState::Paused => counts.paused += 1,
            _ => counts.stopped += 1,
        }
    }
    let cgroup = match condo_cgroups::detect() {
        Ok(condo_cgroups::Mode::V1) => "v1",
        Ok(condo_cgroups::Mode::V2) => "v2",
        Ok(condo_cgroups::Mode::Hybrid) => "hybrid",
        Err(_) => "unknown",
    };
    Ok(Json(SystemInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: condo_api::API_VERSION.into(),
        root: app.paths.root.display().to_string(),
        hostname: read_trim("/proc/sys/kernel/hostname"),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        cgroup: cgroup.into(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        memory_bytes: mem_total(),
        containers: counts,
        uptime_seconds: app.started.elapsed().as_secs(),
    }))
}

/// Any unknown path.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(ErrorBody::new(
        ErrorCode::NotFound,
        format!("no endpoint {}", uri.path()),
    ))
}

/// A known path with a method it does not take.
pub async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> impl IntoResponse {
    let body = ErrorBody::new(
        ErrorCode::InvalidValue,
        format!("{} does not take {method}", uri.path()),
    );
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, Json(body))
}
