//! `POST /v1/containers/{id}/exec`: a plain exec that collects the output, or, with
//! `Upgrade: condo-exec`, an interactive terminal over the upgraded connection.
//!
//! Either way the process is started by a short-lived `condo-monitor exec` helper: the daemon
//! never forks into a container from its threads.

use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use condo_api::{frame, ContainerState, ExecCreate, ExecResult, EXEC_UPGRADE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::Caller;
use crate::db;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::monitor::{EXEC_OWN_FAILURE, EXEC_PROCESS_ENV};
use crate::App;

fn check(x: &ExecCreate) -> ApiResult<()> {
    if x.command.first().is_none_or(|a| a.is_empty()) || x.command.iter().any(|a| a.contains('\0'))
    {
        return Err(ApiError::invalid(
            "command",
            "command: give the program and its arguments",
        ));
    }
    if let Some(e) = x
        .env
        .iter()
        .find(|e| !e.contains('=') || e.starts_with('='))
    {
        return Err(ApiError::invalid(
            "env",
            format!("env \"{e}\": use KEY=value"),
        ));
    }
    if matches!(&x.workdir, Some(w) if !w.starts_with('/')) {
        return Err(ApiError::invalid(
            "workdir",
            "workdir: must be an absolute path",
        ));
    }
    if matches!(&x.user, Some(u) if crate::spec::parse_user(u).is_none()) {
        return Err(ApiError::invalid("user", "user: use uid[:gid] (numbers)"));
    }
    Ok(())
}

/// Turns a helper failure into an API error.
fn helper_error(stderr: &[u8]) -> ApiError {
    let msg = String::from_utf8_lossy(stderr);
    let msg = msg
        .trim()
        .trim_start_matches("condo-monitor exec: ")
        .to_string();
    if msg.contains("cannot execute") || msg.contains("process.cwd") {
        ApiError::invalid("command", msg)
    } else if msg.contains("is stopped")
        || msg.contains("is paused")
        || msg.contains("does not exist")
    {
        ApiError::conflict(msg)
    } else {
        ApiError::internal(msg)
    }
}

pub(super) fn helper(
    app: &App,
    id: &str,
    process: &serde_json::Value,
    tty: bool,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&app.paths.monitor_bin);
    cmd.arg("exec")
        .arg("--runtime-root")
        .arg(&app.paths.runtime)
        .arg("--id")
        .arg(id);
    if tty {
        cmd.arg("--tty");
    }
    cmd.env(EXEC_PROCESS_ENV, process.to_string());
    cmd.kill_on_drop(false);
    cmd
}

/// Checks an exec request against its container and records it: the container's id and the
/// process to run.
pub(super) fn prepare(
    app: &App,
    caller: &Caller,
    r: &str,
    x: &ExecCreate,
) -> ApiResult<(String, serde_json::Value)> {
    check(x)?;
    let row = super::containers::find(app, caller, r)?;
    if row.c.state != ContainerState::Running {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is {}: exec needs a running container",
            row.c.name, row.c.state
        )));
    }
    let cfg = std::fs::read(app.paths.bundle(&row.c.id).join("config.json"))
        .map_err(|e| ApiError::internal(format!("cannot read the container's config: {e}")))?;
    let cfg: serde_json::Value =
        serde_json::from_slice(&cfg).map_err(|e| ApiError::internal(e.to_string()))?;
    let process = crate::spec::exec_process(&cfg["process"], x);
    let ev = db::event(
        &app.db.lock(),
        &row.c.tenant,
        "exec",
        &row.c.id,
        &[
            ("name", row.c.name.clone()),
            ("command", x.command.join(" ")),
        ],
    )?;
    app.emit(ev);
    Ok((row.c.id, process))
}

/// The frames that end an interactive exec: the helper's own failure, if it failed, then the
/// exit code.
pub(super) async fn last_frames(
    mut child: tokio::process::Child,
    mut stderr: tokio::process::ChildStderr,
) -> Vec<Vec<u8>> {
    let code = child
        .wait()
        .await
        .ok()
        .and_then(|s| s.code())
        .unwrap_or(255);
    let mut err = Vec::new();
    let _ = stderr.read_to_end(&mut err).await;
    let mut frames = Vec::new();
    if code == EXEC_OWN_FAILURE && err.starts_with(b"condo-monitor exec:") {
        frames.push(frame::encode(
            frame::ERROR,
            &helper_error(&err).0.message.into_bytes(),
        ));
    }
    frames.push(frame::encode(frame::EXIT, &code.to_be_bytes()));
    frames
}

/// Whether the request asks for the `condo-exec` upgrade.
fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        == Some(EXEC_UPGRADE)
}

/// The answer that hands the connection over to exec frames.
fn switching_protocols() -> ApiResult<Response> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, EXEC_UPGRADE)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The handler.
pub async fn exec(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = wants_upgrade(&req);
    let on_upgrade = if upgrade {
        req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid("body", format!("cannot read the body: {e}")))?;
    let x: ExecCreate = parse_json(&bytes)?;
    if x.tty != upgrade {
        return Err(ApiError::invalid(
            "tty",
            format!("tty goes with the header Upgrade: {EXEC_UPGRADE}, and only with it"),
        ));
    }
    let (id, process) = prepare(&app, &caller, &r, &x)?;
    if !upgrade {
        let out = helper(&app, &id, &process, false)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| ApiError::internal(format!("cannot run the exec helper: {e}")))?;
        let code = out.status.code().unwrap_or(255);
        if code == EXEC_OWN_FAILURE && out.stderr.starts_with(b"condo-monitor exec:") {
            return Err(helper_error(&out.stderr));
        }
        return Ok(Json(ExecResult {
            exit_code: code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
        .into_response());
    }
    let on_upgrade = on_upgrade
        .ok_or_else(|| ApiError::invalid("upgrade", "this connection cannot be upgraded"))?;
    let mut child = helper(&app, &id, &process, true)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApiError::internal(format!("cannot run the exec helper: {e}")))?;
    tokio::spawn(async move {
        let (Some(mut cin), Some(mut cout), Some(cerr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return;
        };
        let Ok(upgraded) = on_upgrade.await else {
            let _ = child.kill().await;
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
        // Client frames go to the helper as they are; it decodes them.
        let input = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut rd, &mut cin).await;
        });
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if wr
                        .write_all(&frame::encode(frame::OUTPUT, &buf[..n]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        for f in last_frames(child, cerr).await {
            let _ = wr.write_all(&f).await;
        }
        let _ = wr.shutdown().await;
        input.abort();
    });
    switching_protocols()
}

/// `POST /v1/containers/{id}/attach`: the terminal of a container started with `tty`, over an
/// upgraded connection (the same frames as an interactive exec; the exit frame comes once the
/// container has stopped).
pub async fn attach(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = wants_upgrade(&req);
    if !upgrade {
        return Err(ApiError::invalid(
            "upgrade",
            format!("attach needs the header Upgrade: {EXEC_UPGRADE}"),
        ));
    }
    let on_upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::invalid("upgrade", "this connection cannot be upgraded"))?;
    let row = super::containers::find(&app, &caller, &r)?;
    if !row.c.config.tty {
        return Err(ApiError::conflict(format!(
            "container \"{}\" has no terminal (create it with tty)",
            row.c.name
        )));
    }
    if !row.c.state.is_live() {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is {}: nothing to attach to",
            row.c.name, row.c.state
        )));
    }
    let sock = app.paths.dir(&row.c.id).join(crate::monitor::ATTACH_SOCKET);
    let mut mon = tokio::net::UnixStream::connect(&sock).await.map_err(|e| {
        ApiError::conflict(format!(
            "container \"{}\": its terminal is not reachable ({e})",
            row.c.name
        ))
    })?;
    let id = row.c.id.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
        let (mut mrd, mut mwr) = mon.split();
        let input = async {
            let _ = tokio::io::copy(&mut rd, &mut mwr).await;
        };
        let output = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match mrd.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => {
                        if wr
                            .write_all(&frame::encode(frame::OUTPUT, &buf[..n]))
                            .await
                            .is_err()
                        {
                            return false;
                        }
                    }
                }
            }
        };
        // Either the client leaves (detach) or the container's terminal closes (it ended).
        let ended = tokio::select! {
            _ = input => false,
            e = output => e,
        };
        if !ended {
            return;
        }
        let mut code = -1;
        for _ in 0..100 {
            match db::get(&app.db.lock(), &id) {
                Ok(Some(r)) if !r.c.state.is_live() => {
                    code = r.c.exit_code.unwrap_or(-1);
                    break;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = wr
            .write_all(&frame::encode(frame::EXIT, &code.to_be_bytes()))
            .await;
        let _ = wr.shutdown().await;
    });
    switching_protocols()
}
