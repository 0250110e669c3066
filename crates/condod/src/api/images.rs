//! `/v1/images`: pull from a registry, import (an OCI layout or docker-archive tar as the
//! request body), list, inspect, export, remove, prune.
//!
//! An admin's images are shared: every tenant sees and runs them. Anyone else's pull or import
//! makes an image of its own tenant, which only that tenant sees (another tenant is answered
//! 404 as for a name that does not exist). A reference resolves to the tenant's own image
//! first, then to a shared one, so names repeat across tenants without meeting. Every image's
//! layers are kept once in the one content store; a tenant's own images count towards its
//! disk quota.

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
use crate::storage::FoundImage;
use crate::App;

fn view(images: &ImageStore, r: &ImageRecord, owner: Option<&str>) -> Image {
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
        tenant: owner.map(String::from),
    }
}

fn admin(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.may_use_host_paths() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("only an admin may {what}")))
    }
}

/// Whose names the caller's new images go to: the shared ones for an admin, else its tenant's.
fn owner(caller: &Caller) -> Option<String> {
    caller.scope().map(String::from)
}

/// The images `name` names for the caller: for a tenant, its own image or else a shared one;
/// for an admin, a shared image, or with `?tenant=` that tenant's own.
pub fn locate(
    app: &App,
    caller: &Caller,
    q: &HashMap<String, String>,
    name: &str,
) -> ApiResult<FoundImage> {
    let found = match (caller.scope(), q.get("tenant")) {
        (None, Some(t)) => app.storage.images_of(Some(t)).ok().and_then(|store| {
            let record = crate::storage::resolve_image(&store, name).ok()?;
            Some(FoundImage {
                store,
                owner: Some(t.clone()),
                record,
            })
        }),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "tenant",
                "tenant: only an admin names another tenant's images",
            ))
        }
        (scope, None) => app.storage.find_image(scope, name),
    };
    found.ok_or_else(|| ApiError::not_found("image", name))
}

/// The distinct blobs of the images in `store`: (images, bytes).
pub fn scope_usage(store: &ImageStore) -> (u64, u64) {
    let mut blobs = HashMap::new();
    let list = store.list().unwrap_or_default();
    for r in &list {
        blobs.insert(r.target.digest.to_string(), r.target.size);
        if let Ok((d, m)) = store.manifest(&r.target) {
            blobs.insert(d.digest.to_string(), d.size);
            blobs.insert(m.config.digest.to_string(), m.config.size);
            for l in &m.layers {
                blobs.insert(l.digest.to_string(), l.size);
            }
        }
    }
    (list.len() as u64, blobs.values().sum())
}

/// Records what `tenant`'s own images hold, for its usage and disk quota.
fn count_images(app: &App, tenant: &str) -> ApiResult<()> {
    let store = app
        .storage
        .images_of(Some(tenant))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (n, bytes) = scope_usage(&store);
    crate::quota::set_images(&app.db.lock(), tenant, n, bytes)?;
    Ok(())
}

/// After a tenant's pull or import recorded `names`: the tenant's usage is brought up to date,
/// and names that take its disk usage over its quota are removed again and refused.
fn admit_images(app: &App, tenant: &str, names: &[String]) -> ApiResult<()> {
    count_images(app, tenant)?;
    let over = {
        let conn = app.db.lock();
        let q = crate::quota::quota(&conn, tenant)?;
        let u = crate::quota::usage(&conn, tenant)?;
        q.and_then(|q| q.disk)
            .filter(|max| u.disk > *max)
            .map(|max| (u.disk, max))
    };
    let Some((used, max)) = over else {
        return Ok(());
    };
    if let Ok(store) = app.storage.images_of(Some(tenant)) {
        for n in names {
            let _ = store.delete(n);
        }
        let _ = store.gc();
    }
    count_images(app, tenant)?;
    Err(ApiError(ErrorBody::new(
        ErrorCode::QuotaExceeded,
        format!("tenant \"{tenant}\" would have disk {used}, over its quota of {max}"),
    )))
}

/// `GET /v1/images`: the shared images and, for a tenant, its own; for an admin, every
/// tenant's too.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<Image>>> {
    let a = app.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<Vec<Image>, ImageError> {
        let shared = &a.storage.images;
        let mut out: Vec<Image> = shared
            .list()?
            .iter()
            .map(|r| view(shared, r, None))
            .collect();
        let owners = match caller.scope() {
            Some(t) => vec![t.to_string()],
            None => shared.scopes()?,
        };
        for t in owners {
            let own = a.storage.images_of(Some(&t))?;
            out.extend(own.list()?.iter().map(|r| view(&own, r, Some(&t))));
        }
        Ok(out)
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
    // A tenant with a disk quota sends no more than the room it has left.
    let room = match caller.scope() {
        Some(t) => {
            let conn = app.db.lock();
            let q = crate::quota::quota(&conn, t)?;
            let used = crate::quota::usage(&conn, t)?.disk;
            q.and_then(|q| q.disk).map(|max| max.saturating_sub(used))
        }
        None => None,
    };
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", tmp.display())))?;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let written = chunk.map_err(|e| e.to_string()).and_then(|c| {
            read += c.len() as u64;
            f.write_all(&c).map_err(|e| e.to_string())
        });
        let refused = match (written, room) {
            (Err(e), _) => Some(ApiError::invalid(
                "body",
                format!("reading the archive: {e}"),
            )),
            (Ok(()), Some(room)) if read > room => Some(ApiError(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "tenant \"{}\" has {room} bytes of its disk quota left, the archive is larger",
                    caller.tenant()
                ),
            ))),
            _ => None,
        };
        if let Some(e) = refused {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    drop(f);
    let tenant = caller.tenant().to_string();
    let owner = owner(&caller);
    let work = move |app: &App, report: &(dyn Fn(ImageProgress) + Sync)| {
        let r = import_file(app, owner.as_deref(), &tmp, name.as_deref(), report);
        let _ = std::fs::remove_file(&tmp);
        if let Ok(list) = &r {
            record(app, &tenant, "import", list.iter().map(|i| i.name.as_str()));
        }
        r
    };
    Ok(answer(app, progress, work).await)
}

/// Imports the archive at `path` into the images of `owner` (`None`: the shared ones),
/// reporting how much of it was read.
fn import_file(
    app: &App,
    owner: Option<&str>,
    path: &std::path::Path,
    name: Option<&str>,
    report: &(dyn Fn(ImageProgress) + Sync),
) -> ApiResult<Vec<Image>> {
    let images = &app
        .storage
        .images_of(owner)
        .map_err(|e| ApiError::internal(e.to_string()))?;
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
    if let Some(t) = owner {
        let names: Vec<String> = list.iter().map(|r| r.name.clone()).collect();
        admit_images(app, t, &names)?;
    }
    // The reader stops at the archive's end marker, before the padding after it.
    report(ImageProgress {
        phase: ImagePhase::Import,
        id: None,
        current: total,
        total,
    });
    Ok(list.iter().map(|r| view(images, r, owner)).collect())
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

/// The name or address of `host` (`name[:port]`, `[v6][:port]`).
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    }
}

/// Whether `host` (`name[:port]`) is this machine, where a registry speaks plain HTTP.
fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `host` (`name[:port]`) names this machine: loopback, or the unspecified address,
/// which a connection takes for this machine too.
fn is_this_host(host: &str) -> bool {
    is_loopback(host)
        || host_name(host)
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
}

/// `POST /v1/images/pull`: fetches an image from a registry; with `stream`, progress as it goes.
pub async fn pull(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    Body(b): Body<ImagePull>,
) -> ApiResult<axum::response::Response> {
    let r = Reference::parse(&b.reference)
        .map_err(|e| ApiError::invalid("reference", e.to_string()))?;
    // A tenant's pull must not reach services on the daemon's own host.
    if caller.scope().is_some() && (is_this_host(&r.registry) || b.plain_http == Some(true)) {
        return Err(ApiError::invalid(
            "reference",
            format!(
                "reference: only an admin pulls from a registry on this host or over plain HTTP ({})",
                r.registry
            ),
        ));
    }
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
    let owner = owner(&caller);
    let work = move |app: &App, report: &(dyn Fn(ImageProgress) + Sync)| {
        let images = &app
            .storage
            .images_of(owner.as_deref())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let cb = |p: &Progress| report(progress_view(p));
        let rec = condo_storage::image::pull::pull(images, &reference, &opts, &cb)
            .map_err(|e| pull_error(&reference, e))?;
        if let Some(t) = &owner {
            admit_images(app, t, std::slice::from_ref(&rec.name))?;
        }
        record(app, &tenant, "pull", [rec.name.as_str()].into_iter());
        Ok(vec![view(images, &rec, owner.as_deref())])
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
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Image>> {
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let f = locate(&a, &caller, &q, &name)?;
        Ok(Json(view(&f.store, &f.record, f.owner.as_deref())))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// The containers made from the image `f` (their image reference resolves to it for their
/// tenant), by name.
fn users_of(app: &App, f: &FoundImage) -> ApiResult<Vec<String>> {
    let rows = crate::db::list(&app.db.lock(), f.owner.as_deref())?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            r.c.config.image.as_deref().is_some_and(|i| {
                app.storage
                    .find_image(Some(&r.c.tenant), i)
                    .is_some_and(|g| g.owner == f.owner && g.record.name == f.record.name)
            })
        })
        .map(|r| r.c.name)
        .collect())
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
    let used: Vec<(String, String)> = crate::db::list(&app.db.lock(), None)?
        .into_iter()
        .filter_map(|r| r.c.config.image.map(|i| (r.c.tenant, i)))
        .collect();
    let a = app.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<ImagesPruned, ImageError> {
        let images = &a.storage.images;
        let mut out = ImagesPruned::default();
        // With `all`, shared images no container uses go; tenants' own images are theirs.
        if all {
            let keep: std::collections::HashSet<String> = used
                .iter()
                .filter_map(|(t, u)| a.storage.find_image(Some(t), u))
                .filter(|f| f.owner.is_none())
                .map(|f| f.record.name)
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

/// `DELETE /v1/images/{name}`: a tenant removes its own images, an admin shared ones (or with
/// `?tenant=` a tenant's); an image a container was made from stays.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let a = app.clone();
    let tenant = caller.tenant().to_string();
    tokio::task::spawn_blocking(move || {
        let f = locate(&a, &caller, &q, &name)?;
        if f.owner.is_none() {
            admin(&caller, "remove a shared image")?;
        }
        let users = users_of(&a, &f)?;
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "image \"{name}\" is used by containers {}: remove them first",
                users.join(", ")
            )));
        }
        let (images, real) = (&f.store, f.record.name.clone());
        match images.delete(&real) {
            Ok(()) => {
                // Blobs another tenant's image names stay (collection looks at every tenant's
                // names); layers that instances sit on stay as snapshots.
                let _ = images.gc();
                if let Some(t) = &f.owner {
                    count_images(&a, t)?;
                }
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
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    Path(name): Path<String>,
) -> ApiResult<axum::response::Response> {
    let f = locate(&app, &caller, &q, &name)?;
    let (images, real) = (f.store, f.record.name);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(256 << 10, ChunkWriter(tx.clone()));
        if let Err(e) = condo_storage::image::archive::export_archive(&images, &[&real], w) {
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
