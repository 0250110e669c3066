//! `POST /v1/containers/{id}/rebase`: moves a container made from a template onto another build
//! of that template. Its volumes (the template's `volumes` paths) and parameters stay; what it
//! wrote elsewhere goes with the old build. A snapshot of the old state comes first; if the new
//! build does not become healthy (or stops), the container goes back to that snapshot, its old
//! build and configuration, and runs as it did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::{Extension, Json};
use condo_api::{Container, ContainerCreate, ContainerRebase, ContainerState, HealthStatus};
use rusqlite::params;

use super::containers::{find, reload};
use crate::auth::Caller;
use crate::db;
use crate::error::{ApiError, ApiResult, Body};
use crate::storage::{mount_instance, template_process, unmount_instance, Process};
use crate::supervisor;
use crate::App;

/// The handler.
pub async fn rebase(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Body(b): Body<ContainerRebase>,
) -> ApiResult<Json<Container>> {
    let row = find(&app, &caller, &r)?;
    let Some(old_ref) = row.c.config.template.clone() else {
        return Err(ApiError::conflict(format!(
            "container \"{}\" was not made from a template: only a template's instance is rebased",
            row.c.name
        )));
    };
    let new_ref = b.template.trim().replace('@', ":");
    let old_name = old_ref.split(':').next().unwrap_or_default().to_string();
    if new_ref.split(':').next() != Some(old_name.as_str()) {
        return Err(ApiError::invalid(
            "template",
            format!(
                "template \"{}\": container \"{}\" is an instance of \"{old_name}\"; rebase moves it to another build of that template",
                b.template, row.c.name
            ),
        ));
    }
    let new_meta =
        app.storage.meta.get(&new_ref).map_err(|e| {
            ApiError::invalid("template", format!("template \"{}\": {e}", b.template))
        })?;
    let old_meta = app.storage.meta.get(&old_ref).ok();
    if old_meta.as_ref().is_some_and(|m| m.image == new_meta.image) {
        return Err(ApiError::conflict(format!(
            "container \"{}\" already runs {}",
            row.c.name, new_meta.image
        )));
    }
    let timeout = Duration::from_secs(b.timeout.unwrap_or(120).max(1));
    let id = row.c.id.clone();
    let slot = app.slot(&id);
    let _g = slot.ops.lock().await;
    let row = find(&app, &caller, &id)?;
    let was_running = row.c.state.is_live() || row.c.state == ContainerState::Restarting;
    if was_running {
        let sig = row
            .c
            .config
            .stop_signal
            .as_deref()
            .and_then(|s| condo_runtime::kill::parse_signal(s).ok())
            .unwrap_or(libc::SIGTERM);
        let grace = Duration::from_secs(row.c.config.stop_timeout.unwrap_or(10));
        supervisor::stop_locked(&app, &id, sig, grace).await?;
    }
    let snap = format!(
        "rebase-{}-{}",
        old_meta.as_ref().map_or("old", |m| m.version.as_str()),
        condo_runtime::state::now_rfc3339()
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect::<String>()
    );
    let (a, i, s, given) = (app.clone(), id.clone(), snap.clone(), b.params.clone());
    let meta = new_meta.clone();
    let moved = blocking(move || {
        let st = &a.storage;
        let target = a.paths.dir(&i).join("rootfs");
        unmount_instance(&target).map_err(ApiError::internal)?;
        let res = st
            .instances
            .snapshot(&i, &s)
            .map_err(|e| ApiError::internal(format!("cannot snapshot the instance: {e}")))
            .and_then(|_| {
                condo_template::instance::rebase(
                    &st.images,
                    &st.instances,
                    &meta,
                    &i,
                    &s,
                    &given,
                    &st.scratch,
                )
                .map_err(|e| ApiError::invalid("template", e.to_string()))
            });
        if res.is_err() {
            let _ = st.instances.rollback(&i, &s);
        }
        let ids = crate::idrange::get(&a.db.lock(), &i)?;
        let m = mount_instance(&st.instances, &i, &target, ids);
        res?;
        m.map_err(ApiError::internal)
    })
    .await;
    if let Err(e) = moved {
        if was_running {
            let _ = supervisor::start_locked(&app, &id, false).await;
        }
        return Err(e);
    }
    let old_config = row.c.config.clone();
    let old_process = old_meta.as_ref().map(template_process);
    let mut cfg = retarget(
        &old_config,
        old_process.as_ref(),
        &template_process(&new_meta),
    );
    cfg.template = Some(format!("{}:{}", new_meta.name, new_meta.version));
    for (k, v) in &b.params {
        let secret = new_meta.parameters.get(k).is_some_and(|p| p.secret);
        cfg.params.insert(
            k.clone(),
            if secret { "********".into() } else { v.clone() },
        );
    }
    store_config(
        &app,
        &row,
        &cfg,
        "rebase",
        &[
            ("template", cfg.template.clone().unwrap_or_default()),
            ("snapshot", snap.clone()),
        ],
    )?;
    let verdict = match supervisor::start_locked(&app, &id, false).await {
        Ok(()) => settle(&app, &id, timeout).await,
        Err(e) => Err(e.0.message),
    };
    let Err(why) = verdict else {
        return reload(&app, &id);
    };
    // The new build failed: back to the snapshot, the old configuration, and the old state.
    supervisor::stop_locked(&app, &id, libc::SIGKILL, Duration::from_secs(5)).await?;
    let (a, i, s) = (app.clone(), id.clone(), snap.clone());
    blocking(move || {
        let target = a.paths.dir(&i).join("rootfs");
        unmount_instance(&target).map_err(ApiError::internal)?;
        let r = a
            .storage
            .instances
            .rollback(&i, &s)
            .map_err(|e| ApiError::internal(format!("cannot roll back to {s}: {e}")));
        let ids = crate::idrange::get(&a.db.lock(), &i)?;
        let m = mount_instance(&a.storage.instances, &i, &target, ids);
        r?;
        m.map_err(ApiError::internal)
    })
    .await?;
    store_config(
        &app,
        &row,
        &old_config,
        "rebase-rolled-back",
        &[("template", old_ref.clone()), ("reason", why.clone())],
    )?;
    if was_running {
        supervisor::start_locked(&app, &id, false).await?;
    }
    Err(ApiError::conflict(format!(
        "container \"{}\": {} did not become healthy ({why}); it is back on {old_ref} (snapshot {snap})",
        row.c.name, b.template
    )))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Waits until the started container is healthy (or, without a healthcheck, still runs after a
/// few seconds); the reason when it is not.
async fn settle(app: &App, id: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let row = db::get(&app.db.lock(), id)
            .map_err(|e| e.to_string())?
            .ok_or("the container vanished")?;
        if !row.c.state.is_live() {
            return Err(format!(
                "it stopped with code {}",
                row.c.exit_code.unwrap_or(-1)
            ));
        }
        match (&row.c.config.healthcheck, &row.c.health) {
            (None, _) if start.elapsed() >= Duration::from_secs(3) => return Ok(()),
            (Some(_), Some(h)) if h.status == HealthStatus::Healthy => return Ok(()),
            (Some(_), Some(h)) if h.status == HealthStatus::Unhealthy => {
                return Err(format!("unhealthy: {}", h.last_output.trim()));
            }
            _ => {}
        }
        if start.elapsed() >= timeout {
            return Err(format!("not healthy after {} s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The configuration with what came from the old build replaced by the new build's: the
/// process, its environment, working directory and healthcheck, where the creator had not
/// chosen them. Without the old build's record, the template's keys win.
fn retarget(c: &ContainerCreate, old: Option<&Process>, new: &Process) -> ContainerCreate {
    let mut c = c.clone();
    if old.is_none_or(|o| o.args == c.command) {
        c.command = new.args.clone();
    }
    let key = |e: &String| e.split('=').next().unwrap_or_default().to_string();
    let own: Vec<String> = match old {
        Some(o) if c.env.starts_with(&o.env) => c.env[o.env.len()..].to_vec(),
        _ => {
            let theirs: Vec<String> = new.env.iter().map(key).collect();
            c.env
                .iter()
                .filter(|e| !theirs.contains(&key(e)))
                .cloned()
                .collect()
        }
    };
    c.env = new.env.iter().cloned().chain(own).collect();
    if old.is_none_or(|o| o.cwd == c.workdir) {
        c.workdir = new.cwd.clone();
    }
    if old.is_none_or(|o| o.healthcheck == c.healthcheck) {
        c.healthcheck = new.healthcheck.clone();
    }
    c
}

fn store_config(
    app: &App,
    row: &db::ContainerRow,
    cfg: &ContainerCreate,
    action: &str,
    attrs: &[(&str, String)],
) -> ApiResult<()> {
    let text = serde_json::to_string(cfg).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut attributes = vec![("name", row.c.name.clone())];
    attributes.extend(attrs.iter().cloned());
    let ev = {
        let mut conn = app.db.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE containers SET config = ?2 WHERE id = ?1",
            params![row.c.id, text],
        )?;
        let ev = db::event(&tx, &row.c.tenant, action, &row.c.id, &attributes)?;
        tx.commit()?;
        ev
    };
    app.emit(ev);
    Ok(())
}
