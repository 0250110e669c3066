//! `/v1/templates`: build (from a folder on the host or the library) and list.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::{Template, TemplateBuild, TemplateBuilt};

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
    Body(b): Body<TemplateBuild>,
) -> ApiResult<(StatusCode, Json<TemplateBuilt>)> {
    if !caller.may_use_host_paths() {
        return Err(ApiError::forbidden("only an admin may build templates"));
    }
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
    let a = app.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut log = Vec::new();
        let builder = a.storage.builder();
        let res = builder
            .build(&dir, &mut |ev| match ev {
                condo_template::Event::Step {
                    index,
                    total,
                    label,
                    cached,
                } => log.push(format!(
                    "[{index}/{total}] {label}{}",
                    if cached { " (cached)" } else { "" }
                )),
                condo_template::Event::Log(l) => log.push(l),
                _ => {}
            })
            .map_err(|e| e.to_string());
        res.map(|b| (b, log))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (built, log) = r.map_err(|e| ApiError::invalid("template", e))?;
    Ok((
        StatusCode::CREATED,
        Json(TemplateBuilt {
            template: crate::storage::template_view(&built.meta),
            steps: built.steps as u64,
            cached: built.cached as u64,
            seconds: built.seconds,
            log,
        }),
    ))
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
