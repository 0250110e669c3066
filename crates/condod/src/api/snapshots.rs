//! `/v1/containers/{id}/snapshots`: snapshots of the root filesystem of a container made from an
//! image or a template. A stopped container's instance is unmounted for the operation; a
//! running one is frozen while its mounted rootfs is snapshotted (`snapshot_running`: a
//! subvolume snapshot on btrfs and for an overlay with a disk limit, a copy of what it wrote
//! otherwise). Rollback needs it stopped.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use condo_api::{Container, Snapshot, SnapshotClone, SnapshotCreate};

use super::containers::{find, reload, valid_name};
use crate::auth::Caller;
use crate::db::{self, ContainerRow};
use crate::error::{ApiError, ApiResult, Body};
use crate::App;

fn storage_err(e: condo_storage::instance::InstanceError) -> ApiError {
    use condo_storage::instance::InstanceError as E;
    match e {
        E::NoSnapshot { snapshot, .. } => ApiError::not_found("snapshot", &snapshot),
        E::SnapshotExists { snapshot, .. } => {
            ApiError::conflict(format!("snapshot \"{snapshot}\" already exists"))
        }
        E::BadName(n) => ApiError::invalid(
            "name",
            format!("name \"{n}\": use letters, digits and _ . -"),
        ),
        e => ApiError::internal(e.to_string()),
    }
}

/// The container, which must have an instance; with `stopped`, it must not run either.
fn instance_of(app: &App, caller: &Caller, r: &str, stopped: bool) -> ApiResult<ContainerRow> {
    let row = find(app, caller, r)?;
    if row.c.config.rootfs.is_some() {
        return Err(ApiError::conflict(format!(
            "container \"{}\" runs on a host directory: only containers made from an image or a template have snapshots",
            row.c.name
        )));
    }
    if stopped && (row.c.state.is_live() || row.c.state == condo_api::ContainerState::Restarting) {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is {}: stop it first",
            row.c.name, row.c.state
        )));
    }
    Ok(row)
}

/// Runs `f` on the unmounted instance of `id`, then mounts it again.
async fn unmounted<T: Send + 'static>(
    app: &Arc<App>,
    id: &str,
    f: impl FnOnce(&condo_storage::instance::InstanceStore) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let (a, id) = (app.clone(), id.to_string());
    tokio::task::spawn_blocking(move || {
        let target = a.paths.dir(&id).join("rootfs");
        crate::storage::unmount_instance(&target).map_err(ApiError::internal)?;
        crate::fault::point("snapshot.unmounted");
        let r = f(&a.storage.instances);
        crate::fault::point("snapshot.taken");
        let ids = crate::idrange::get(&a.db.lock(), &id)?;
        let m = crate::storage::mount_instance(&a.storage.instances, &id, &target, ids);
        let out = r?;
        m.map_err(ApiError::internal)?;
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

fn event(app: &App, row: &ContainerRow, action: &str, snap: &str) -> ApiResult<()> {
    let ev = db::event(
        &app.db.lock(),
        &row.c.tenant,
        action,
        &row.c.id,
        &[("name", row.c.name.clone()), ("snapshot", snap.to_string())],
    )?;
    app.emit(ev);
    Ok(())
}

/// `GET /v1/containers/{id}/snapshots`.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Vec<Snapshot>>> {
    let row = instance_of(&app, &caller, &r, false)?;
    let a = app.clone();
    let l = tokio::task::spawn_blocking(move || a.storage.instances.snapshots(&row.c.id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(storage_err)?;
    Ok(Json(
        l.into_iter()
            .map(|s| Snapshot {
                name: s.name,
                created: s.created,
                size: s.size,
            })
            .collect(),
    ))
}

/// `POST /v1/containers/{id}/snapshots`.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Body(b): Body<SnapshotCreate>,
) -> ApiResult<(StatusCode, Json<Snapshot>)> {
    if !valid_name(&b.name) {
        return Err(ApiError::invalid(
            "name",
            format!("name \"{}\": use letters, digits and _ . -", b.name),
        ));
    }
    let id = instance_of(&app, &caller, &r, false)?.c.id;
    let slot = app.slot(&id);
    let _g = slot.ops.lock().await;
    let row = instance_of(&app, &caller, &id, false)?;
    let (i, name) = (id.clone(), b.name.clone());
    let find = move |inst: &condo_storage::instance::InstanceStore| {
        let l = inst.snapshots(&i).map_err(storage_err)?;
        l.into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ApiError::internal("the snapshot vanished"))
    };
    let s = if row.c.state.is_live() {
        // The rootfs stays mounted and in use: its processes are frozen for a consistent copy.
        let (a, i, name) = (app.clone(), id.clone(), b.name.clone());
        let pause = row.c.state == condo_api::ContainerState::Running;
        let row2 = row.clone();
        tokio::task::spawn_blocking(move || {
            let rt = &a.paths.runtime;
            // What it wrote reaches the disk before the freeze, so the processes stand still
            // only for what they write meanwhile.
            if let Ok(root) = std::fs::File::open(a.paths.dir(&i).join("rootfs")) {
                let _ = rustix::fs::syncfs(&root);
            }
            if pause {
                if let Err(e) = condo_runtime::pause::pause(rt, &i) {
                    // A freeze that failed half-way must not leave some processes frozen.
                    let _ = condo_runtime::pause::resume(rt, &i);
                    return Err(e.into());
                }
                crate::fault::point("snapshot.frozen");
            }
            let r = a.storage.instances.snapshot_running(&i, &name);
            if pause {
                thaw_after_snapshot(&a, &row2, r.is_ok())?;
            }
            r.map_err(storage_err)?;
            find(&a.storage.instances)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??
    } else {
        let (i, name) = (id.clone(), b.name.clone());
        instance_of(&app, &caller, &id, true)?;
        unmounted(&app, &id, move |inst| {
            inst.snapshot(&i, &name).map_err(storage_err)?;
            find(inst)
        })
        .await?
    };
    event(&app, &row, "snapshot", &b.name)?;
    Ok((
        StatusCode::CREATED,
        Json(Snapshot {
            name: s.name,
            created: s.created,
            size: s.size,
        }),
    ))
}

/// Thaws a container a live snapshot froze. The thaw is tried a few times; when it still fails
/// the row says paused (the truth, which `condo resume` can then act on) and the error says
/// whether the snapshot was taken.
fn thaw_after_snapshot(app: &App, row: &ContainerRow, taken: bool) -> ApiResult<()> {
    let mut last = None;
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        match condo_runtime::pause::resume(&app.paths.runtime, &row.c.id) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    let ev = {
        let conn = app.db.lock();
        conn.execute(
            "UPDATE containers SET state = ?2 WHERE id = ?1",
            rusqlite::params![row.c.id, condo_api::ContainerState::Paused.as_str()],
        )?;
        db::event(
            &conn,
            &row.c.tenant,
            "pause",
            &row.c.id,
            &[("name", row.c.name.clone())],
        )?
    };
    app.emit(ev);
    Err(ApiError::internal(format!(
        "the snapshot {}, but container \"{}\" could not be resumed and stays paused \
         (condo resume {}): {}",
        if taken { "was taken" } else { "failed" },
        row.c.name,
        row.c.name,
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// `POST /v1/containers/{id}/snapshots/{snapshot}/rollback`.
pub async fn rollback(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((r, snap)): Path<(String, String)>,
) -> ApiResult<Json<Container>> {
    let id = instance_of(&app, &caller, &r, false)?.c.id;
    let slot = app.slot(&id);
    let _g = slot.ops.lock().await;
    let row = instance_of(&app, &caller, &id, true)?;
    let (i, s) = (id.clone(), snap.clone());
    unmounted(&app, &id, move |inst| {
        inst.rollback(&i, &s).map(|_| ()).map_err(storage_err)
    })
    .await?;
    event(&app, &row, "rollback", &snap)?;
    reload(&app, &id)
}

/// `DELETE /v1/containers/{id}/snapshots/{snapshot}`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((r, snap)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let row = instance_of(&app, &caller, &r, false)?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    let (a, i, s) = (app.clone(), row.c.id.clone(), snap.clone());
    tokio::task::spawn_blocking(move || a.storage.instances.delete_snapshot(&i, &s))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(storage_err)?;
    event(&app, &row, "snapshot-delete", &snap)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/containers/{id}/snapshots/{snapshot}/clone`: a new container from the snapshot.
pub async fn clone(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((r, snap)): Path<(String, String)>,
    Body(b): Body<SnapshotClone>,
) -> ApiResult<(StatusCode, Json<Container>)> {
    if !valid_name(&b.name) {
        return Err(ApiError::invalid(
            "name",
            format!("name \"{}\": use letters, digits and _ . -", b.name),
        ));
    }
    let row = instance_of(&app, &caller, &r, false)?;
    let id = crate::auth::random_hex(8).map_err(|e| ApiError::internal(e.to_string()))?;
    std::fs::create_dir_all(app.paths.dir(&id))
        .map_err(|e| ApiError::internal(format!("cannot create the container directory: {e}")))?;
    let (a, src, new, s) = (app.clone(), row.c.id.clone(), id.clone(), snap.clone());
    let isolated = crate::idrange::wants_range(&row.c.config);
    let made = tokio::task::spawn_blocking(move || {
        let inst = &a.storage.instances;
        let ids = if isolated {
            Some(crate::idrange::allocate(&a.db.lock(), &new).map_err(ApiError::internal)?)
        } else {
            None
        };
        inst.clone_from(&src, &s, &new, None).map_err(storage_err)?;
        let target = a.paths.dir(&new).join("rootfs");
        crate::storage::mount_instance(inst, &new, &target, ids).map_err(ApiError::internal)?;
        crate::fault::point("clone.instance");
        Ok(())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))
    .and_then(|r| r);
    if let Err(e) = made {
        super::containers::drop_instance(&app, &id).await;
        return Err(e);
    }
    let mut cfg = row.c.config.clone();
    cfg.name = Some(b.name.clone());
    cfg.hostname = None;
    // A clone is kept: it is not thrown away at its end like a `run --rm` source.
    cfg.ephemeral = false;
    let text = serde_json::to_string(&cfg).map_err(|e| ApiError::internal(e.to_string()));
    let stored =
        text.and_then(|t| super::containers::insert(&app, &row.c.tenant, &id, &b.name, &t, &cfg));
    match stored {
        Ok(ev) => app.emit(ev),
        Err(e) => {
            super::containers::drop_instance(&app, &id).await;
            return Err(e);
        }
    }
    Ok((StatusCode::CREATED, reload(&app, &id)?))
}
