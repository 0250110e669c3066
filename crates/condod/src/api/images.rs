//! `/v1/images`: import (an OCI layout or docker-archive tar as the request body), list, remove.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::Image;
use condo_storage::image::{ImageRecord, ImageStore};
use futures_util::StreamExt;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
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

/// `POST /v1/images/import`: the body is the archive.
pub async fn import(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Vec<Image>>)> {
    admin(&caller, "import images")?;
    let name = q.get("name").cloned();
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
    let (a, t) = (app.clone(), tmp.clone());
    let r = tokio::task::spawn_blocking(move || {
        let images = &a.storage.images;
        let f = std::fs::File::open(&t).map_err(|e| e.to_string())?;
        condo_storage::image::archive::import_archive(
            images,
            std::io::BufReader::new(f),
            name.as_deref(),
        )
        .map(|l| l.iter().map(|r| view(images, r)).collect::<Vec<_>>())
        .map_err(|e| e.to_string())
    })
    .await;
    let _ = std::fs::remove_file(&tmp);
    let list = r
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::invalid("body", format!("cannot import the archive: {e}")))?;
    if list.is_empty() {
        return Err(ApiError::invalid(
            "name",
            "the archive names no image: give one with ?name=",
        ));
    }
    Ok((StatusCode::CREATED, Json(list)))
}

/// `DELETE /v1/images/{name}`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&caller, "remove images")?;
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let images = &a.storage.images;
        let real = crate::storage::resolve_image(images, &name)
            .map(|r| r.name)
            .unwrap_or_else(|_| name.clone());
        match images.delete(&real) {
            Ok(()) => {
                // Layers that running instances sit on stay as snapshots.
                let _ = images.gc();
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
