//! `/v1/containers`: create, list, inspect, lifecycle verbs, rename, update, delete, wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use condo_api::{
    Container, ContainerCreate, ContainerRename, ContainerState, ContainerUpdate, Limits,
    WaitResult,
};
use rusqlite::params;

use crate::auth::Caller;
use crate::db::{self, ContainerRow};
use crate::error::{ApiError, ApiResult, Body};
use crate::supervisor;
use crate::App;

type Q = Query<HashMap<String, String>>;

/// Finds `reference` among the caller's containers.
pub fn find(app: &App, caller: &Caller, reference: &str) -> ApiResult<ContainerRow> {
    db::find(&app.db.lock(), caller.scope(), reference)?
        .ok_or_else(|| ApiError::not_found("container", reference))
}

pub fn reload(app: &App, id: &str) -> ApiResult<Json<Container>> {
    let row = db::get(&app.db.lock(), id)?.ok_or_else(|| ApiError::not_found("container", id))?;
    Ok(Json(row.c))
}

pub fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() <= 128
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_limits(l: &Limits) -> ApiResult<()> {
    if matches!(l.memory, Some(m) if m < 4 << 20) {
        return Err(ApiError::invalid(
            "limits.memory",
            "limits.memory: at least 4194304 bytes (4 MiB)",
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if matches!(l.cpus, Some(c) if !(c >= 0.01 && c <= cpus)) {
        return Err(ApiError::invalid(
            "limits.cpus",
            format!("limits.cpus: between 0.01 and {cpus} (this host's CPUs)"),
        ));
    }
    if matches!(l.pids, Some(p) if p < 1) {
        return Err(ApiError::invalid("limits.pids", "limits.pids: at least 1"));
    }
    // The smallest filesystem a writable layer with a limit gets (condo-storage's pool).
    if matches!(l.disk, Some(d) if d < 16 << 20) {
        return Err(ApiError::invalid(
            "limits.disk",
            "limits.disk: at least 16777216 bytes (16 MiB)",
        ));
    }
    Ok(())
}

fn check_create(c: &ContainerCreate, caller: &Caller) -> ApiResult<()> {
    if let Some(n) = &c.name {
        if !valid_name(n) {
            return Err(ApiError::invalid("name", format!("name \"{n}\": use letters, digits and _ . - (a letter or digit first, at most 128)")));
        }
    }
    let sources = [c.image.is_some(), c.template.is_some(), c.rootfs.is_some()];
    if sources.iter().filter(|x| **x).count() > 1 {
        return Err(ApiError::invalid(
            "image",
            "give one of image, template or rootfs",
        ));
    }
    if !c.params.is_empty() && c.template.is_none() {
        return Err(ApiError::invalid(
            "params",
            "params: only a container made from a template takes parameters",
        ));
    }
    if let Some(i) = c.image.as_ref().or(c.template.as_ref()) {
        if i.is_empty() || i.len() > 255 || i.contains(|ch: char| ch.is_control()) {
            return Err(ApiError::invalid(
                if c.image.is_some() {
                    "image"
                } else {
                    "template"
                },
                format!("\"{i}\" is not an image or template reference"),
            ));
        }
    }
    match &c.rootfs {
        None if c.image.is_none() && c.template.is_none() => {
            return Err(ApiError::invalid(
                "rootfs",
                "an image, a template or a rootfs (a directory) is required",
            ))
        }
        None => {}
        Some(r) => {
            if !caller.may_use_host_paths() {
                return Err(ApiError::forbidden(
                    "only an admin may use a host directory as rootfs",
                ));
            }
            let p = std::path::Path::new(r);
            if !p.is_absolute() || !p.is_dir() {
                return Err(ApiError::invalid(
                    "rootfs",
                    format!("rootfs \"{r}\" is not an absolute path to a directory"),
                ));
            }
        }
    }
    if c.command.iter().any(|a| a.contains('\0')) || c.command.first().is_some_and(|a| a.is_empty())
    {
        return Err(ApiError::invalid(
            "command",
            "command: the program must be a non-empty string without NUL",
        ));
    }
    if let Some(e) = c
        .env
        .iter()
        .find(|e| !e.contains('=') || e.starts_with('=') || e.contains('\0'))
    {
        return Err(ApiError::invalid(
            "env",
            format!("env \"{e}\": use KEY=value"),
        ));
    }
    if matches!(&c.workdir, Some(w) if !w.starts_with('/')) {
        return Err(ApiError::invalid(
            "workdir",
            "workdir: must be an absolute path",
        ));
    }
    if let Some(u) = &c.user {
        if crate::spec::parse_user(u).is_none() {
            return Err(ApiError::invalid(
                "user",
                format!("user \"{u}\": use uid[:gid] (numbers)"),
            ));
        }
    }
    if let Some(h) = &c.hostname {
        if !valid_name(h) || h.len() > 63 {
            return Err(ApiError::invalid(
                "hostname",
                format!("hostname \"{h}\" is not a valid host name"),
            ));
        }
    }
    if let Some(s) = &c.stop_signal {
        condo_runtime::kill::parse_signal(s)
            .map_err(|e| ApiError::invalid("stop_signal", e.to_string()))?;
    }
    for v in &c.volumes {
        let m = crate::volumes::parse(v)
            .map_err(|e| ApiError::invalid("volumes", format!("volume \"{v}\": {e}")))?;
        if let crate::volumes::Source::Host(host) = &m.source {
            if !caller.may_use_host_paths() {
                return Err(ApiError::forbidden(format!(
                    "volume \"{v}\": only an admin may mount host paths (use a volume name)"
                )));
            }
            if !std::path::Path::new(host).exists() {
                return Err(ApiError::invalid(
                    "volumes",
                    format!("volume \"{v}\": {host} does not exist"),
                ));
            }
        }
    }
    if c.limits.disk.is_some() && c.rootfs.is_some() {
        return Err(ApiError::invalid(
            "limits.disk",
            "limits.disk: only a container made from an image or a template has a writable layer to size",
        ));
    }
    if let Some(u) = c.userns.as_deref().filter(|u| *u != "host") {
        return Err(ApiError::invalid(
            "userns",
            format!("userns \"{u}\": leave it out (a range of its own) or use \"host\""),
        ));
    }
    if (c.privileged || c.userns.is_some()) && !caller.may_use_host_paths() {
        return Err(ApiError::forbidden(
            "only an admin may turn a container's isolation off (privileged, userns host)",
        ));
    }
    if let Some(h) = &c.healthcheck {
        if h.command.first().is_none_or(|a| a.is_empty()) {
            return Err(ApiError::invalid(
                "healthcheck.command",
                "healthcheck.command: give the program and its arguments",
            ));
        }
        if h.interval == 0 || h.timeout == 0 || h.retries == 0 || h.start_interval == 0 {
            return Err(ApiError::invalid(
                "healthcheck",
                "healthcheck: interval, timeout, retries and start_interval must be at least 1",
            ));
        }
    }
    if c.ephemeral && c.restart.policy != condo_api::RestartKind::No {
        return Err(ApiError::invalid(
            "restart",
            "restart: an ephemeral container (run --rm) is thrown away at its end, never restarted",
        ));
    }
    check_limits(&c.limits)
}

/// Creates and mounts the instance of container `id` from its image or template, and fills in
/// the process the image or template gives where the creator did not say.
async fn make_instance(
    app: &Arc<App>,
    tenant: &str,
    id: &str,
    c: &mut ContainerCreate,
    ids: Option<crate::idrange::IdRange>,
) -> ApiResult<()> {
    let (a, idc, cc, tenant) = (app.clone(), id.to_string(), c.clone(), tenant.to_string());
    let made = tokio::task::spawn_blocking(move || {
        let st = &a.storage;
        let p = match (&cc.image, &cc.template) {
            (Some(i), _) => {
                { crate::storage::instance_from_image(st, &tenant, i, &idc, cc.limits.disk) }
                    .map_err(|e| ApiError::invalid("image", format!("image \"{i}\": {e}")))
            }
            (None, Some(t)) => {
                { crate::storage::instance_from_template(st, t, &idc, &cc.params, cc.limits.disk) }
                    .map_err(|e| ApiError::invalid("template", e))
            }
            (None, None) => Err(ApiError::internal("no image or template")),
        }?;
        let target = a.paths.dir(&idc).join("rootfs");
        let volatile = cc.ephemeral;
        if let Err(e) =
            crate::storage::mount_instance_as(&st.instances, &idc, &target, ids, volatile)
        {
            let _ = st.instances.delete(&idc);
            return Err(ApiError::internal(e));
        }
        Ok(p)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    if c.command.is_empty() {
        c.command = made.args;
    }
    let mut env = made.env;
    env.append(&mut c.env);
    c.env = env;
    if c.workdir.is_none() {
        c.workdir = made.cwd;
    }
    if c.user.is_none() {
        c.user = made.user;
    }
    if c.healthcheck.is_none() {
        c.healthcheck = made.healthcheck;
    }
    let l = &mut c.limits;
    l.memory = l.memory.or(made.limits.memory);
    l.cpus = l.cpus.or(made.limits.cpus);
    l.pids = l.pids.or(made.limits.pids);
    l.disk = l.disk.or(made.limits.disk);
    // The instance has the values; the stored configuration (and inspect) need not.
    for k in &made.secrets {
        if let Some(v) = c.params.get_mut(k) {
            *v = "********".into();
        }
    }
    Ok(())
}

/// Unmounts and deletes the instance of container `id` (if it has one) and its directory,
/// and gives back its id range.
pub async fn drop_instance(app: &Arc<App>, id: &str) {
    let (a, id) = (app.clone(), id.to_string());
    let _ = tokio::task::spawn_blocking(move || {
        let dir = a.paths.dir(&id);
        let target = dir.join("rootfs");
        if let Err(e) = crate::storage::unmount_instance(&target) {
            tracing::warn!(container = %id, "{e}");
            return;
        }
        if let Err(e) = crate::idrange::release(&a.db.lock(), &id) {
            tracing::warn!(container = %id, "cannot give back its id range: {e}");
        }
        crate::fault::point("delete.unmounted");
        if a.storage.instances.get(&id).is_ok() {
            if let Err(e) = a.storage.instances.delete(&id) {
                tracing::warn!(container = %id, "cannot delete its instance: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// `GET /v1/containers`.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Vec<Container>>> {
    let all = super::flag(&q, "all")?;
    let rows = db::list(&app.db.lock(), caller.scope())?;
    let list: Vec<Container> = rows
        .into_iter()
        .map(|r| r.c)
        .filter(|c| all || c.state.is_live() || c.state == ContainerState::Restarting)
        .collect();
    Ok(Json(with_endpoints(&app, list).await?))
}

/// Stores a new container row and its `create` event, once the tenant's quota admits it (in
/// the same transaction, so concurrent creates cannot pass the quota together).
pub fn insert(
    app: &App,
    tenant: &str,
    id: &str,
    name: &str,
    config: &str,
    c: &ContainerCreate,
) -> ApiResult<condo_api::Event> {
    db::lazily(&mut app.db.lock(), c.ephemeral, |conn| {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        crate::quota::admit_container(&tx, tenant, c, None)?;
        let r = tx.execute(
            "INSERT INTO containers (id, tenant_id, name, state, config, restart_policy, created_at)
             VALUES (?1, ?2, ?3, 'created', ?4, ?5, ?6)",
            params![
                id,
                tenant,
                name,
                config,
                c.restart.to_string(),
                condo_runtime::state::now_rfc3339()
            ],
        );
        if let Err(rusqlite::Error::SqliteFailure(f, _)) = &r {
            if f.code == rusqlite::ErrorCode::ConstraintViolation {
                return Err(ApiError::conflict(format!(
                    "the name \"{name}\" is already in use"
                )));
            }
        }
        r?;
        let ev = db::event(&tx, tenant, "create", id, &[("name", name.to_string())])?;
        tx.commit()?;
        Ok(ev)
    })
}

/// `POST /v1/containers`.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(c): Body<ContainerCreate>,
) -> ApiResult<impl IntoResponse> {
    check_create(&c, &caller)?;
    // A tenant at its container quota is told before an image is unpacked for nothing; the
    // insert checks again, in its transaction.
    crate::quota::admit(
        &app.db.lock(),
        caller.tenant(),
        &crate::quota::Claim {
            containers: 1,
            ..Default::default()
        },
        &Default::default(),
    )?;
    let (cc, tenant) = (c.clone(), caller.tenant().to_string());
    let cap = crate::network::bandwidth_of(&app, &tenant)?;
    crate::network::blocking(&app, move |h| h.check_create(&tenant, cap, &cc)).await??;
    let id = crate::auth::random_hex(8).map_err(|e| ApiError::internal(e.to_string()))?;
    let name = c
        .name
        .clone()
        .unwrap_or_else(|| format!("ctr-{}", &id[..8]));
    let mut stored = c.clone();
    stored.name = Some(name.clone());
    std::fs::create_dir_all(app.paths.dir(&id))
        .map_err(|e| ApiError::internal(format!("cannot create the container directory: {e}")))?;
    crate::fault::point("create.dir");
    let ids = if crate::idrange::wants_range(&c) {
        match db::lazily(&mut app.db.lock(), c.ephemeral, |conn| {
            crate::idrange::allocate(conn, &id)
        }) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = std::fs::remove_dir_all(app.paths.dir(&id));
                return Err(ApiError::internal(e));
            }
        }
    } else {
        None
    };
    if c.rootfs.is_none() {
        if let Err(e) = make_instance(&app, caller.tenant(), &id, &mut stored, ids).await {
            drop_instance(&app, &id).await;
            return Err(e);
        }
        crate::fault::point("create.instance");
    }
    // Named volumes are made on first use, and unmade if the container is not.
    let made = match crate::volumes::resolve(&app, caller.tenant(), &stored) {
        Ok((_, made)) => made,
        Err(e) => {
            drop_instance(&app, &id).await;
            return Err(e);
        }
    };
    let ev = serde_json::to_string(&stored)
        .map_err(|e| ApiError::internal(e.to_string()))
        .and_then(|config| insert(&app, caller.tenant(), &id, &name, &config, &stored));
    let ev = match ev {
        Ok(ev) => ev,
        Err(e) => {
            crate::volumes::forget(&app, &made);
            drop_instance(&app, &id).await;
            return Err(e);
        }
    };
    crate::fault::point("create.row");
    for v in made {
        app.emit(v);
    }
    app.emit(ev);
    let lazy = super::audit::lazy_if(stored.ephemeral);
    Ok((StatusCode::CREATED, lazy, reload(&app, &id)?))
}

/// `GET /v1/containers/{id}`.
pub async fn inspect(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Container>> {
    let c = find(&app, &caller, &r)?.c;
    let mut one = with_endpoints(&app, vec![c]).await?;
    Ok(Json(one.remove(0)))
}

/// Fills in the network endpoints of running containers.
async fn with_endpoints(app: &Arc<App>, mut list: Vec<Container>) -> ApiResult<Vec<Container>> {
    if list
        .iter()
        .all(|c| crate::network::wanted(&c.config).is_none())
    {
        return Ok(list);
    }
    crate::network::blocking(app, move |h| {
        for c in list.iter_mut() {
            c.endpoint = h.endpoint(&c.id);
        }
        list
    })
    .await
}

/// `POST /v1/containers/{id}/start`.
pub async fn start(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<(Option<Extension<super::audit::Lazy>>, Json<Container>)> {
    let row = find(&app, &caller, &r)?;
    let id = row.c.id;
    let slot = app.slot(&id);
    let _g = slot.ops.lock().await;
    supervisor::start_locked(&app, &id, false).await?;
    Ok((
        super::audit::lazy_if(row.c.config.ephemeral),
        reload(&app, &id)?,
    ))
}

fn stop_params(row: &ContainerRow, q: &HashMap<String, String>) -> ApiResult<(i32, Duration)> {
    let sig = q
        .get("signal")
        .or(row.c.config.stop_signal.as_ref())
        .map_or(Ok(libc::SIGTERM), |s| {
            condo_runtime::kill::parse_signal(s)
                .map_err(|e| ApiError::invalid("signal", e.to_string()))
        })?;
    let timeout = match q.get("timeout") {
        Some(t) => t.parse().map_err(|_| {
            ApiError::invalid(
                "timeout",
                format!("timeout \"{t}\" is not a number of seconds"),
            )
        })?,
        None => row.c.config.stop_timeout.unwrap_or(10),
    };
    Ok((sig, Duration::from_secs(timeout)))
}

/// `POST /v1/containers/{id}/stop`.
pub async fn stop(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Container>> {
    let row = find(&app, &caller, &r)?;
    let (sig, timeout) = stop_params(&row, &q)?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    supervisor::stop_locked(&app, &row.c.id, sig, timeout).await?;
    reload(&app, &row.c.id)
}

/// `POST /v1/containers/{id}/restart`.
pub async fn restart(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Container>> {
    let row = find(&app, &caller, &r)?;
    let (sig, timeout) = stop_params(&row, &q)?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    supervisor::stop_locked(&app, &row.c.id, sig, timeout).await?;
    supervisor::start_locked(&app, &row.c.id, false).await?;
    reload(&app, &row.c.id)
}

/// `POST /v1/containers/{id}/kill`.
pub async fn kill(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Container>> {
    let row = find(&app, &caller, &r)?;
    let sig = q.get("signal").map_or(Ok(libc::SIGKILL), |s| {
        condo_runtime::kill::parse_signal(s).map_err(|e| ApiError::invalid("signal", e.to_string()))
    })?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    let row =
        db::get(&app.db.lock(), &row.c.id)?.ok_or_else(|| ApiError::not_found("container", &r))?;
    if !row.c.state.is_live() {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is {}: nothing to signal",
            row.c.name, row.c.state
        )));
    }
    let root = app.paths.runtime.clone();
    let id = row.c.id.clone();
    tokio::task::spawn_blocking(move || condo_runtime::kill::kill(&root, &id, sig, false))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    reload(&app, &row.c.id)
}

async fn freeze(
    app: Arc<App>,
    caller: Caller,
    r: String,
    pause: bool,
) -> ApiResult<Json<Container>> {
    let row = find(&app, &caller, &r)?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    let row =
        db::get(&app.db.lock(), &row.c.id)?.ok_or_else(|| ApiError::not_found("container", &r))?;
    let (from, to, action) = if pause {
        (ContainerState::Running, ContainerState::Paused, "pause")
    } else {
        (ContainerState::Paused, ContainerState::Running, "resume")
    };
    if row.c.state != from {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is {}: only a {from} container can {action}",
            row.c.name, row.c.state
        )));
    }
    let root = app.paths.runtime.clone();
    let id = row.c.id.clone();
    tokio::task::spawn_blocking(move || {
        if pause {
            condo_runtime::pause::pause(&root, &id)
        } else {
            condo_runtime::pause::resume(&root, &id)
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let ev = {
        let conn = app.db.lock();
        conn.execute(
            "UPDATE containers SET state = ?2 WHERE id = ?1",
            params![row.c.id, to.as_str()],
        )?;
        db::event(
            &conn,
            &row.c.tenant,
            action,
            &row.c.id,
            &[("name", row.c.name.clone())],
        )?
    };
    app.emit(ev);
    reload(&app, &row.c.id)
}

/// `POST /v1/containers/{id}/pause`.
pub async fn pause(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Container>> {
    freeze(app, caller, r, true).await
}

/// `POST /v1/containers/{id}/resume`.
pub async fn resume(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Container>> {
    freeze(app, caller, r, false).await
}

/// `POST /v1/containers/{id}/rename`.
pub async fn rename(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Body(b): Body<ContainerRename>,
) -> ApiResult<Json<Container>> {
    if !valid_name(&b.name) {
        return Err(ApiError::invalid(
            "name",
            format!("name \"{}\": use letters, digits and _ . -", b.name),
        ));
    }
    let row = find(&app, &caller, &r)?;
    let mut cfg = row.c.config.clone();
    cfg.name = Some(b.name.clone());
    let cfg = serde_json::to_string(&cfg).map_err(|e| ApiError::internal(e.to_string()))?;
    let ev = {
        let mut conn = app.db.lock();
        let tx = conn.transaction()?;
        match tx.execute(
            "UPDATE containers SET name = ?2, config = ?3 WHERE id = ?1",
            params![row.c.id, b.name, cfg],
        ) {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(ApiError::conflict(format!(
                    "the name \"{}\" is already in use",
                    b.name
                )));
            }
            r => r?,
        };
        let ev = db::event(
            &tx,
            &row.c.tenant,
            "rename",
            &row.c.id,
            &[("name", b.name.clone()), ("old_name", row.c.name.clone())],
        )?;
        tx.commit()?;
        ev
    };
    app.emit(ev);
    reload(&app, &row.c.id)
}

/// `POST /v1/containers/{id}/update`.
pub async fn update(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Body(u): Body<ContainerUpdate>,
) -> ApiResult<Json<Container>> {
    check_limits(&u.limits)?;
    if u.limits.disk.is_some() {
        return Err(ApiError::invalid(
            "limits.disk",
            "limits.disk: the writable layer's size is set at creation",
        ));
    }
    let row = find(&app, &caller, &r)?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    let row =
        db::get(&app.db.lock(), &row.c.id)?.ok_or_else(|| ApiError::not_found("container", &r))?;
    if let Some(rate) = u.rate {
        let next = ContainerCreate {
            rate,
            ..row.c.config.clone()
        };
        let tenant = row.c.tenant.clone();
        let cap = crate::network::bandwidth_of(&app, &tenant)?;
        crate::network::blocking(&app, move |h| h.check_create(&tenant, cap, &next)).await??;
        if row.c.state.is_live() {
            let id = row.c.id.clone();
            crate::network::blocking(&app, move |h| h.set_rate(&id, &rate, cap)).await??;
        }
    }
    let mut resized = row.c.config.clone();
    resized.limits.memory = u.limits.memory.or(resized.limits.memory);
    resized.limits.cpus = u.limits.cpus.or(resized.limits.cpus);
    crate::quota::admit_container(
        &app.db.lock(),
        &row.c.tenant,
        &resized,
        Some(&row.c.config.limits),
    )?;
    if row.c.state.is_live() {
        let res: condo_cgroups::Resources =
            serde_json::from_value(crate::spec::resources(&u.limits))
                .map_err(|e| ApiError::internal(e.to_string()))?;
        let root = app.paths.runtime.clone();
        let id = row.c.id.clone();
        tokio::task::spawn_blocking(move || condo_runtime::update::update(&root, &id, &res))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
    }
    let mut cfg = row.c.config.clone();
    let l = &u.limits;
    cfg.limits.memory = l.memory.or(cfg.limits.memory);
    cfg.limits.cpus = l.cpus.or(cfg.limits.cpus);
    cfg.limits.pids = l.pids.or(cfg.limits.pids);
    if let Some(p) = u.restart {
        cfg.restart = p;
    }
    if let Some(rate) = u.rate {
        cfg.rate = rate;
    }
    let text = serde_json::to_string(&cfg).map_err(|e| ApiError::internal(e.to_string()))?;
    let ev = {
        let mut conn = app.db.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE containers SET config = ?2, restart_policy = ?3 WHERE id = ?1",
            params![row.c.id, text, cfg.restart.to_string()],
        )?;
        let ev = db::event(
            &tx,
            &row.c.tenant,
            "update",
            &row.c.id,
            &[("name", row.c.name.clone())],
        )?;
        tx.commit()?;
        ev
    };
    app.emit(ev);
    reload(&app, &row.c.id)
}

/// `DELETE /v1/containers/{id}`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Query(q): Q,
) -> ApiResult<(Option<Extension<super::audit::Lazy>>, StatusCode)> {
    let force = super::flag(&q, "force")?;
    let row = find(&app, &caller, &r)?;
    let slot = app.slot(&row.c.id);
    let _g = slot.ops.lock().await;
    let row =
        db::get(&app.db.lock(), &row.c.id)?.ok_or_else(|| ApiError::not_found("container", &r))?;
    if row.c.state.is_live() || row.c.state == ContainerState::Restarting {
        if !force {
            return Err(ApiError::conflict(format!(
                "container \"{}\" is {}: stop it first or delete with force",
                row.c.name, row.c.state
            )));
        }
        supervisor::stop_locked(&app, &row.c.id, libc::SIGKILL, Duration::from_secs(0)).await?;
    }
    crate::fault::point("delete.stopped");
    let root = app.paths.runtime.clone();
    let id = row.c.id.clone();
    let _ =
        tokio::task::spawn_blocking(move || condo_runtime::delete::delete(&root, &id, true)).await;
    crate::fault::point("delete.runtime");
    let ev = db::lazily(&mut app.db.lock(), row.c.config.ephemeral, |conn| {
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [&row.c.id])?;
        crate::idrange::release(&tx, &row.c.id)?;
        let ev = db::event(
            &tx,
            &row.c.tenant,
            "delete",
            &row.c.id,
            &[("name", row.c.name.clone())],
        )?;
        tx.commit()?;
        Ok::<_, ApiError>(ev)
    })?;
    crate::fault::point("delete.row");
    let (id, tenant) = (row.c.id.clone(), row.c.tenant.clone());
    let lazy = super::audit::lazy_if(row.c.config.ephemeral);
    if row.c.config.ephemeral {
        // Its name and quota are free already; the files of a throw-away container go after
        // the answer (a crash meanwhile leaves orphans, which the next start removes).
        let (app, under_way) = (app.clone(), app.removals.clone());
        tokio::spawn(async move {
            remove_files(&app, &id, &tenant, ev).await;
            drop(under_way);
        });
    } else {
        remove_files(&app, &id, &tenant, ev).await;
    }
    Ok((lazy, StatusCode::NO_CONTENT))
}

/// Removes what a deleted container leaves on the host (network, instance, directory), then
/// tells of its deletion.
async fn remove_files(app: &Arc<App>, id: &str, tenant: &str, deleted: condo_api::Event) {
    crate::network::forget_container(app, id, tenant).await;
    drop_instance(app, id).await;
    // Never through a root filesystem still mounted there (a host directory, for one).
    if !crate::storage::is_mounted(&app.paths.dir(id).join("rootfs")) {
        let _ = std::fs::remove_dir_all(app.paths.dir(id));
    }
    app.emit(deleted);
    app.forget(id);
}

/// `POST /v1/containers/{id}/wait`: answers once the container is neither running, paused
/// nor waiting for a restart.
pub async fn wait(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<(Option<Extension<super::audit::Lazy>>, Json<WaitResult>)> {
    let id = find(&app, &caller, &r)?.c.id;
    let mut rx = app.events.subscribe();
    loop {
        let row =
            db::get(&app.db.lock(), &id)?.ok_or_else(|| ApiError::not_found("container", &r))?;
        if !row.c.state.is_live() && row.c.state != ContainerState::Restarting {
            return Ok((
                super::audit::lazy_if(row.c.config.ephemeral),
                Json(WaitResult {
                    exit_code: row.c.exit_code.unwrap_or(-1),
                }),
            ));
        }
        // Any event may be the one; a lagging receiver just looks again.
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
    }
}
