//! `/v1/templates`: build (from a folder on the host or the library) and list.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use condo_api::{Template, TemplateBuild, TemplateBuildEvent, TemplateBuilt};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body};
use crate::App;

/// `GET /v1/templates`.
pub async fn list(State(app): State<Arc<App>>) -> ApiResult<Json<Vec<Template>>> {
    let metas = app
        .storage
        .meta
        .list()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        metas.iter().map(crate::storage::template_view).collect(),
    ))
}

/// `POST /v1/templates/build`.
pub async fn build(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    Body(b): Body<TemplateBuild>,
) -> ApiResult<Response> {
    if !caller.may_use_host_paths() {
        return Err(ApiError::forbidden("only an admin may build templates"));
    }
    let stream = super::flag(&q, "stream")?;
    let dir = match (&b.path, &b.name) {
        (Some(p), None) => {
            let d = std::path::PathBuf::from(p);
            if !d.is_absolute() || !d.join("template.toml").is_file() {
                return Err(ApiError::invalid(
                    "path",
                    format!("path \"{p}\" is not an absolute path to a folder with template.toml"),
                ));
            }
            d
        }
        (None, Some(n)) => {
            let ok = !n.is_empty()
                && n.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
                && !n.starts_with('.');
            let lib = app.storage.library.clone();
            match lib.map(|l| l.join(n)) {
                Some(d) if ok && d.join("template.toml").is_file() => d,
                _ => return Err(ApiError::not_found("template", n)),
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "path",
                "give either path (a template folder) or name (from the library)",
            ))
        }
    };
    if stream {
        return Ok(stream_build(app, dir));
    }
    let a = app.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut log = Vec::new();
        run_build(&a, &dir, &mut |l| log.push(l)).map(|b| (b, log))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (built, log) = r.map_err(|e| ApiError::invalid("template", e))?;
    Ok((StatusCode::CREATED, Json(built_view(&built, log))).into_response())
}

fn built_view(b: &condo_template::Built, log: Vec<String>) -> TemplateBuilt {
    TemplateBuilt {
        template: crate::storage::template_view(&b.meta),
        steps: b.steps as u64,
        cached: b.cached as u64,
        seconds: b.seconds,
        log,
    }
}

/// Builds the template in `dir` (one build at a time), handing each progress line to `line`.
fn run_build(
    app: &App,
    dir: &std::path::Path,
    line: &mut dyn FnMut(String),
) -> Result<condo_template::Built, String> {
    let builder = app.storage.builder();
    builder
        .build(dir, &mut |ev| match ev {
            condo_template::Event::Step {
                index,
                total,
                label,
                cached,
            } => line(format!(
                "[{index}/{total}] {label}{}",
                if cached { " (cached)" } else { "" }
            )),
            condo_template::Event::Log(l) => line(l),
            _ => {}
        })
        .map_err(|e| e.to_string())
}

/// The build as it happens: one `TemplateBuildEvent` per line, the result last.
fn stream_build(app: Arc<App>, dir: std::path::PathBuf) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<TemplateBuildEvent>(256);
    tokio::task::spawn_blocking(move || {
        let t = tx.clone();
        let r = run_build(&app, &dir, &mut |l| {
            let _ = t.blocking_send(TemplateBuildEvent {
                log: Some(l),
                ..Default::default()
            });
        });
        let last = match r {
            Ok(b) => TemplateBuildEvent {
                built: Some(built_view(&b, Vec::new())),
                ..Default::default()
            },
            Err(e) => TemplateBuildEvent {
                error: Some(ApiError::invalid("template", e).0),
                ..Default::default()
            },
        };
        let _ = tx.blocking_send(last);
    });
    (StatusCode::CREATED, super::streams::ndjson(rx)).into_response()
}

/// `GET /v1/templates/{name}`: `name` or `name:version` (the newest build without a version).
pub async fn show(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Template>> {
    let m = app
        .storage
        .meta
        .get(&name)
        .map_err(|_| ApiError::not_found("template", &name))?;
    Ok(Json(crate::storage::template_view(&m)))
}

/// `DELETE /v1/templates/{name}`: forgets the build and its image; instances keep their files.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !caller.may_use_host_paths() {
        return Err(ApiError::forbidden("only an admin may remove templates"));
    }
    let m = app
        .storage
        .meta
        .get(&name)
        .map_err(|_| ApiError::not_found("template", &name))?;
    app.storage
        .meta
        .delete(&m.image)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let a = app.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let _ = a.storage.images.delete(&m.image);
        let _ = a.storage.images.gc();
    })
    .await;
    Ok(StatusCode::NO_CONTENT)
}
