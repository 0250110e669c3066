//! `/v1/images`: pull from a registry, import (an OCI layout or docker-archive tar as the
//! request body), list, inspect, export, remove, prune.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use condo_api::{
    ErrorBody, ErrorCode, Image, ImageEvent, ImagePhase, ImageProgress, ImagePull, ImagesPruned,
};
use condo_storage::image::pull::{Credentials, Progress, PullOptions};
use condo_storage::image::reference::Reference;
use condo_storage::image::{ImageError, ImageRecord, ImageStore};
use futures_util::StreamExt;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Body};
use crate::App;

fn view(images: &ImageStore, r: &ImageRecord) -> Image {
    let (size, layers) = match images.manifest(&r.target) {
        Ok((_, m)) => (
            m.layers.iter().map(|l| l.size).sum::<u64>() + m.config.size,
            m.layers.len() as u64,
        ),
        Err(_) => (0, 0),
    };
    Image {
        name: r.name.clone(),
        digest: r.target.digest.to_string(),
        size,
        layers,
        created: r.created,
    }
}

fn admin(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.may_use_host_paths() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("only an admin may {what}")))
    }
}

/// `GET /v1/images`.
pub async fn list(State(app): State<Arc<App>>) -> ApiResult<Json<Vec<Image>>> {
    let a = app.clone();
    let out = tokio::task::spawn_blocking(move || {
        let images = &a.storage.images;
        images
            .list()
            .map(|l| l.iter().map(|r| view(images, r)).collect::<Vec<_>>())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(out))
}

/// Records and publishes an image event for each of `names` (an image's id is its name).
fn record<'a>(app: &App, tenant: &str, action: &str, names: impl Iterator<Item = &'a str>) {
    for n in names {
        let ev = crate::db::event_of(
            &app.db.lock(),
            "image",
            tenant,
            action,
            n,
            &[("name", n.to_string())],
        );
        match ev {
            Ok(ev) => app.emit(ev),
            Err(e) => tracing::warn!(image = %n, "cannot record the {action} event: {e}"),
        }
    }
}

/// `POST /v1/images/import`: the body is the archive; with `stream`, progress as it is read.
pub async fn import(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> ApiResult<axum::response::Response> {
    admin(&caller, "import images")?;
    let name = q.get("name").cloned();
    let progress = super::flag(&q, "stream")?;
    if let Some(n) = &name {
        if n.is_empty() || n.len() > 255 || n.contains(|c: char| c.is_control() || c == ' ') {
            return Err(ApiError::invalid(
                "name",
                format!("name \"{n}\" is not an image name"),
            ));
        }
    }
    // The archive goes to a file first: import reads it as a stream, blocking.
    let tmp = app.storage.scratch.join(format!(
        "import-{}.tar",
        crate::auth::random_hex(8).map_err(|e| ApiError::internal(e.to_string()))?
    ));
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", tmp.display())))?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let written = chunk
            .map_err(|e| e.to_string())
            .and_then(|c| f.write_all(&c).map_err(|e| e.to_string()));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(ApiError::invalid(
                "body",
                format!("reading the archive: {e}"),
            ));
        }
    }
    drop(f);
    let tenant = caller.tenant().to_string();
    let work = move |app: &App, report: &(dyn Fn(ImageProgress) + Sync)| {
        let r = import_file(app, &tmp, name.as_deref(), report);
        let _ = std::fs::remove_file(&tmp);
        if let Ok(list) = &r {
            record(app, &tenant, "import", list.iter().map(|i| i.name.as_str()));
        }
        r
    };
    Ok(answer(app, progress, work).await)
}

/// Imports the archive at `path`, reporting how much of it was read.
fn import_file(
    app: &App,
    path: &std::path::Path,
    name: Option<&str>,
    report: &(dyn Fn(ImageProgress) + Sync),
) -> ApiResult<Vec<Image>> {
    let images = &app.storage.images;
    let f = std::fs::File::open(path)
        .map_err(|e| ApiError::internal(format!("cannot open {}: {e}", path.display())))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let counted = Counted {
        inner: f,
        done: 0,
        last: 0,
        total,
        report,
    };
    let list = condo_storage::image::archive::import_archive(
        images,
        std::io::BufReader::with_capacity(256 << 10, counted),
        name,
    )
    .map_err(|e| {
        // A parser's message may quote what it choked on: one short line of it.
        let e = e.to_string();
        let first: String = e
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        ApiError::invalid("body", format!("cannot import the archive: {first}"))
    })?;
    if list.is_empty() {
        return Err(ApiError::invalid(
            "name",
            "the archive names no image: give one with ?name=",
        ));
    }
    // The reader stops at the archive's end marker, before the padding after it.
    report(ImageProgress {
        phase: ImagePhase::Import,
        id: None,
        current: total,
        total,
    });
    Ok(list.iter().map(|r| view(images, r)).collect())
}

/// A reader that reports its progress every MiB and at the end.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    last: u64,
    total: u64,
    report: &'a (dyn Fn(ImageProgress) + Sync),
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.last >= 1 << 20 || (n == 0 && self.done != self.last) {
            self.last = self.done;
            (self.report)(ImageProgress {
                phase: ImagePhase::Import,
                id: None,
                current: self.done,
                total: self.total.max(self.done),
            });
        }
        Ok(n)
    }
}

/// Runs `work` (blocking) and answers with its images: at once as a stream of progress
/// events when `stream`, else with the list once it is done.
async fn answer<F>(app: Arc<App>, stream: bool, work: F) -> axum::response::Response
where
    F: FnOnce(&App, &(dyn Fn(ImageProgress) + Sync)) -> ApiResult<Vec<Image>> + Send + 'static,
{
    if !stream {
        let r = tokio::task::spawn_blocking(move || work(&app, &|_| {}))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))
            .and_then(|r| r);
        return match r {
            Ok(list) => (StatusCode::CREATED, Json(list)).into_response(),
            Err(e) => e.into_response(),
        };
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<ImageEvent>(256);
    tokio::task::spawn_blocking(move || {
        let t = tx.clone();
        let report = move |p: ImageProgress| {
            // A client that went away does not stop the work: it finishes and is recorded.
            let _ = t.blocking_send(ImageEvent {
                progress: Some(p),
                ..Default::default()
            });
        };
        let last = match work(&app, &report) {
            Ok(list) => ImageEvent {
                images: Some(list),
                ..Default::default()
            },
            Err(e) => ImageEvent {
                error: Some(e.0),
                ..Default::default()
            },
        };
        let _ = tx.blocking_send(last);
    });
    (StatusCode::CREATED, super::streams::ndjson(rx)).into_response()
}

/// Whether `host` (`name[:port]`) is this machine, where a registry speaks plain HTTP.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `POST /v1/images/pull`: fetches an image from a registry; with `stream`, progress as it goes.
pub async fn pull(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    Body(b): Body<ImagePull>,
) -> ApiResult<axum::response::Response> {
    admin(&caller, "pull images")?;
    let r = Reference::parse(&b.reference)
        .map_err(|e| ApiError::invalid("reference", e.to_string()))?;
    let credentials = match (b.username, b.password) {
        (Some(username), Some(password)) => Some(Credentials { username, password }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "password",
                "password: a user name needs a password",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "username",
                "username: a password needs a user name",
            ))
        }
    };
    let opts = PullOptions {
        credentials,
        plain_http: b.plain_http.unwrap_or_else(|| is_loopback(&r.registry)),
        ..Default::default()
    };
    let reference = b.reference;
    let tenant = caller.tenant().to_string();
    let work = move |app: &App, report: &(dyn Fn(ImageProgress) + Sync)| {
        let images = &app.storage.images;
        let cb = |p: &Progress| report(progress_view(p));
        let rec = condo_storage::image::pull::pull(images, &reference, &opts, &cb)
            .map_err(|e| pull_error(&reference, e))?;
        record(app, &tenant, "pull", [rec.name.as_str()].into_iter());
        Ok(vec![view(images, &rec)])
    };
    Ok(answer(app, super::flag(&q, "stream")?, work).await)
}

fn progress_view(p: &Progress) -> ImageProgress {
    match p {
        Progress::Resolved {
            manifest,
            blobs,
            bytes,
        } => ImageProgress {
            phase: ImagePhase::Resolved,
            id: Some(manifest.to_string()),
            current: *blobs as u64,
            total: *bytes,
        },
        Progress::Blob {
            digest,
            done,
            total,
        } => ImageProgress {
            phase: ImagePhase::Download,
            id: Some(digest.to_string()),
            current: *done,
            total: *total,
        },
        Progress::BlobDone { digest } => ImageProgress {
            phase: ImagePhase::Downloaded,
            id: Some(digest.to_string()),
            current: 0,
            total: 0,
        },
    }
}

/// A registry that has no such image is a 404; one that fails or refuses, a 502.
fn pull_error(reference: &str, e: ImageError) -> ApiError {
    match &e {
        ImageError::Registry { reason, .. } if reason.starts_with("HTTP 404") => {
            ApiError(ErrorBody::new(
                ErrorCode::NotFound,
                format!("image \"{reference}\" is not in the registry ({e})"),
            ))
        }
        ImageError::Registry { .. } | ImageError::NoPlatform(_) | ImageError::MediaType(..) => {
            ApiError::upstream(format!("cannot pull \"{reference}\": {e}"))
        }
        ImageError::Reference(..) => ApiError::invalid("reference", e.to_string()),
        _ => ApiError::internal(format!("cannot pull \"{reference}\": {e}")),
    }
}

/// `GET /v1/images/{name}`.
pub async fn inspect(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Image>> {
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let images = &a.storage.images;
        crate::storage::resolve_image(images, &name)
            .map(|r| Json(view(images, &r)))
            .map_err(|_| ApiError::not_found("image", &name))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// `POST /v1/images/prune`: collects blobs and unpacked layers nothing uses; with `all`, first
/// removes the images no container was made from.
pub async fn prune(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<ImagesPruned>> {
    admin(&caller, "prune images")?;
    let all = super::flag(&q, "all")?;
    let used: Vec<String> = crate::db::list(&app.db.lock(), None)?
        .into_iter()
        .filter_map(|r| r.c.config.image)
        .collect();
    let a = app.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<ImagesPruned, ImageError> {
        let images = &a.storage.images;
        let mut out = ImagesPruned::default();
        if all {
            let keep: std::collections::HashSet<String> = used
                .iter()
                .filter_map(|u| crate::storage::resolve_image(images, u).ok())
                .map(|r| r.name)
                .collect();
            // Templates' images are theirs to remove.
            let templates: std::collections::HashSet<String> = a
                .storage
                .meta
                .list()
                .map(|l| l.into_iter().map(|m| m.image).collect())
                .unwrap_or_default();
            for r in images.list()? {
                if !keep.contains(&r.name) && !templates.contains(&r.name) {
                    images.delete(&r.name)?;
                    out.images.push(r.name);
                }
            }
        }
        let gc = images.gc()?;
        out.blobs = gc.removed.len() as u64;
        out.bytes = gc.bytes;
        let snap = a.storage.instances.snapshotter().clone();
        out.layers = condo_storage::image::rootfs::prune(images, snap.as_ref())? as u64;
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("prune: {e}")))?;
    record(
        &app,
        caller.tenant(),
        "delete",
        out.images.iter().map(String::as_str),
    );
    Ok(Json(out))
}

/// `DELETE /v1/images/{name}`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&caller, "remove images")?;
    let a = app.clone();
    let tenant = caller.tenant().to_string();
    tokio::task::spawn_blocking(move || {
        let images = &a.storage.images;
        let real = crate::storage::resolve_image(images, &name)
            .map(|r| r.name)
            .unwrap_or_else(|_| name.clone());
        match images.delete(&real) {
            Ok(()) => {
                // Layers that running instances sit on stay as snapshots.
                let _ = images.gc();
                record(&a, &tenant, "delete", [real.as_str()].into_iter());
                Ok(())
            }
            Err(condo_storage::image::ImageError::NotFound(_)) => {
                Err(ApiError::not_found("image", &name))
            }
            Err(e) => Err(ApiError::internal(e.to_string())),
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(StatusCode::NO_CONTENT)
}

/// Hands what export writes to the response, chunk by chunk.
struct ChunkWriter(tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(axum::body::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /v1/images/{name}/export`: the image as an OCI image layout tar, streamed.
pub async fn export(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> ApiResult<axum::response::Response> {
    let real = crate::storage::resolve_image(&app.storage.images, &name)
        .map(|r| r.name)
        .map_err(|_| ApiError::not_found("image", &name))?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(256 << 10, ChunkWriter(tx.clone()));
        if let Err(e) =
            condo_storage::image::archive::export_archive(&a.storage.images, &[&real], w)
        {
            // The answer has begun: an error in the stream cuts the connection short, so the
            // client sees a failed transfer rather than a complete-looking archive.
            tracing::warn!(image = %real, "export: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    axum::response::Response::builder()
        .header("content-type", "application/x-tar")
        .body(axum::body::Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}
