//! `GET /v1/containers/{id}/console`: an interactive exec over a WebSocket, for browsers (which
//! cannot use the `condo-exec` upgrade).
//!
//! The first message from the client is the exec request as JSON text (`tty` is implied). Then
//! each binary message carries exec frames, the same as on the `condo-exec` upgrade: the client
//! sends input, resize and end frames, the daemon sends output, error and exit frames. A request
//! the daemon refuses gets one text message, the error body, and the socket closes.

use std::process::Stdio;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use condo_api::ExecCreate;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::Caller;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::App;

/// The handler. An absent container and a request that is not a WebSocket get an error body
/// before any upgrade.
pub async fn console(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    super::containers::find(&app, &caller, &r)?;
    let ws = ws.map_err(|e| {
        ApiError::invalid(
            "upgrade",
            format!("the console is a WebSocket: {}", e.body_text()),
        )
    })?;
    Ok(ws
        .max_message_size(1 << 20)
        .on_upgrade(move |socket| session(app, caller, r, socket)))
}

async fn refuse(mut socket: WebSocket, e: ApiError) {
    let body = serde_json::to_string(&e.0).unwrap_or_default();
    let _ = socket.send(Message::Text(body.into())).await;
    let _ = socket.close().await;
}

async fn session(app: Arc<App>, caller: Caller, r: String, mut socket: WebSocket) {
    let first = match socket.recv().await {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(_)) => {
            let e = ApiError::invalid("body", "send the exec request as a JSON text message first");
            return refuse(socket, e).await;
        }
        _ => return,
    };
    let mut x: ExecCreate = match parse_json(first.as_bytes()) {
        Ok(x) => x,
        Err(e) => return refuse(socket, e).await,
    };
    x.tty = true;
    let (id, process) = match super::exec::prepare(&app, &caller, &r, &x) {
        Ok(v) => v,
        Err(e) => return refuse(socket, e).await,
    };
    let spawned = super::exec::helper(&app, &id, &process, true)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let e = ApiError::internal(format!("cannot run the exec helper: {e}"));
            return refuse(socket, e).await;
        }
    };
    let (Some(mut cin), Some(mut cout), Some(cerr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill().await;
        return;
    };
    let (mut tx, mut rx) = socket.split();
    // The client's frames go to the helper as they are; it decodes them.
    let input = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let data = match m {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            if cin.write_all(&data).await.is_err() {
                break;
            }
        }
        // Closing the helper's input ends the terminal session as a hang-up would.
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match cout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let f = condo_api::frame::encode(condo_api::frame::OUTPUT, &buf[..n]);
                if tx.send(Message::Binary(f.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    for f in super::exec::last_frames(child, cerr).await {
        let _ = tx.send(Message::Binary(f.into())).await;
    }
    let _ = tx.close().await;
    input.abort();
}
