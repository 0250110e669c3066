//! Running containers: start through a monitor, stop, record exits, restart policies, and the
//! reconciliation that lets the daemon crash and come back without losing a container.
//!
//! API operations on one container take its `ops` lock. Recording an exit does not: it is one
//! conditional UPDATE keyed by the monitor's pid, so whoever sees the exit first (the watcher
//! task, or a stop waiting for it) records it once.

use std::sync::Arc;
use std::time::Duration;

use condo_api::{ContainerState, RestartKind};
use rusqlite::params;

use crate::db::{self, ContainerRow};
use crate::error::{ApiError, ApiResult};
use crate::monitor;
use crate::App;

/// Seconds a run must last for the restart backoff to start over.
const STABLE_RUN: u64 = 10;
/// Longest wait between two automatic restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Writes the bundle of `row` (config.json regenerated from its current configuration).
fn write_bundle(
    app: &App,
    row: &ContainerRow,
    net: Option<&crate::network::Joined>,
) -> ApiResult<()> {
    // Containers made before ranges existed get theirs now.
    let ids = if crate::idrange::wants_range(&row.c.config) {
        Some(crate::idrange::allocate(&app.db.lock(), &row.c.id).map_err(ApiError::internal)?)
    } else {
        None
    };
    let target = app.paths.dir(&row.c.id).join("rootfs");
    let rootfs = match (&row.c.config.rootfs, ids) {
        (Some(r), None) => r.clone(),
        (Some(r), Some(ids)) => {
            // A host directory, seen through the range: bound once, until the delete.
            if !crate::storage::is_mounted(&target) {
                std::fs::create_dir_all(&target).map_err(|e| {
                    ApiError::internal(format!("cannot create {}: {e}", target.display()))
                })?;
                crate::idmount::bind(std::path::Path::new(r), &target, ids, false)
                    .map_err(ApiError::internal)?;
            }
            target.display().to_string()
        }
        (None, _) => {
            // An image or template instance: mounted at creation; again after a host reboot.
            crate::storage::mount_instance(&app.storage.instances, &row.c.id, &target, ids)
                .map_err(ApiError::internal)?;
            target.display().to_string()
        }
    };
    // Named volumes become their directories (made again if one was removed meanwhile).
    let (cfg, made) = crate::volumes::resolve(app, &row.c.tenant, &row.c.config)?;
    made.into_iter().for_each(|ev| app.emit(ev));
    let mut v = crate::spec::config(&cfg, &row.c.name, &rootfs, ids);
    if let Some(j) = net {
        crate::network::apply_spec(&mut v, j);
        if ids.is_some() {
            low_ports_for_all(&j.netns).map_err(ApiError::internal)?;
        }
    }
    let dir = app.paths.bundle(&row.c.id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let text = serde_json::to_vec_pretty(&v).map_err(|e| ApiError::internal(e.to_string()))?;
    condo_runtime::state::write_atomic(&dir.join("config.json"), &text)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Lets any user bind ports below 1024 in the network namespace at `netns`. It belongs to the
/// host's user namespace, where a container's root holds no capability, so without this its
/// services could not listen on port 80 (the namespace is the container's own: nothing else
/// listens there). A thread of its own enters it: /proc/sys/net shows the caller's namespace.
fn low_ports_for_all(netns: &std::path::Path) -> Result<(), String> {
    let ns = std::fs::File::open(netns)
        .map_err(|e| format!("cannot open the network namespace {}: {e}", netns.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::os::fd::AsFd;
            condo_sys::ns::setns(ns.as_fd(), libc::CLONE_NEWNET)
                .map_err(|e| format!("cannot enter the network namespace: {e}"))?;
            std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
                .map_err(|e| format!("net.ipv4.ip_unprivileged_port_start: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the network namespace thread panicked".into()))
    })
}

/// Removes what the runtime may still hold for `id` (state dir, cgroup, a stray init).
async fn clear_runtime(app: &App, id: &str) {
    let root = app.paths.runtime.clone();
    let id = id.to_string();
    let _ =
        tokio::task::spawn_blocking(move || condo_runtime::delete::delete(&root, &id, true)).await;
}

/// Starts the container `id`; the caller holds its ops lock. `by_policy` counts a restart.
pub async fn start_locked(app: &Arc<App>, id: &str, by_policy: bool) -> ApiResult<()> {
    let row = db::get(&app.db.lock(), id)?.ok_or_else(|| ApiError::not_found("container", id))?;
    if row.c.state.is_live() {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is already {}",
            row.c.name, row.c.state
        )));
    }
    clear_runtime(app, id).await;
    let dir = app.paths.dir(id);
    let _ = std::fs::remove_file(dir.join(monitor::EXIT_FILE));
    let joined = crate::network::join_container(app, &row).await?;
    if let Err(e) = write_bundle(app, &row, joined.as_ref()) {
        crate::network::leave_container(app, id).await;
        return Err(e);
    }
    let started = match monitor::spawn(&app.paths, id).await {
        Ok(s) => {
            crate::fault::point("start.monitor");
            s
        }
        Err(msg) => {
            crate::network::leave_container(app, id).await;
            let conn = app.db.lock();
            if row.c.state == ContainerState::Restarting {
                conn.execute(
                    "UPDATE containers SET state = 'stopped' WHERE id = ?1",
                    [id],
                )?;
            }
            let ev = db::event(
                &conn,
                &row.c.tenant,
                "start-failed",
                id,
                &[("error", msg.clone())],
            )?;
            drop(conn);
            app.emit(ev);
            return Err(
                if msg.contains("cannot execute") || msg.contains("process.cwd") {
                    ApiError::invalid("command", msg)
                } else {
                    ApiError::internal(format!("cannot start container \"{}\": {msg}", row.c.name))
                },
            );
        }
    };
    let now = condo_runtime::state::now_rfc3339();
    let ev = db::lazily(&mut app.db.lock(), row.c.config.ephemeral, |conn| {
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE containers SET state = 'running', pid = ?2, monitor_pid = ?3, monitor_start = ?4,
             started_at = ?5, finished_at = NULL, exit_code = NULL, stop_requested = 0, health = NULL,
             restart_count = CASE WHEN ?6 THEN restart_count + 1 ELSE 0 END WHERE id = ?1",
            params![id, started.pid, started.monitor_pid, started.monitor_start as i64, now, by_policy],
        )?;
        let action = if by_policy { "restart" } else { "start" };
        let ev = db::event(
            &tx,
            &row.c.tenant,
            action,
            id,
            &[("name", row.c.name.clone())],
        )?;
        tx.commit()?;
        Ok::<_, ApiError>(ev)
    })?;
    app.emit(ev);
    watch(app, id, started.monitor_pid, started.monitor_start);
    if let Some(h) = row.c.config.healthcheck.clone() {
        crate::health::start(app, id, started.monitor_pid, h);
    }
    Ok(())
}

/// Starts a task that records the exit once the monitor ends.
pub fn watch(app: &Arc<App>, id: &str, monitor_pid: i32, monitor_start: u64) {
    let app = app.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        monitor::wait_exit(monitor_pid, monitor_start).await;
        record_exit(&app, &id, monitor_pid).await;
    });
}

/// Records the end of the run watched by `monitor_pid` (once), then applies the restart policy.
pub async fn record_exit(app: &Arc<App>, id: &str, monitor_pid: i32) {
    let dir = app.paths.dir(id);
    let recorded = monitor::read_exit(&dir);
    if recorded.is_none() {
        // The monitor died without recording: make sure nothing of the container is left.
        clear_runtime(app, id).await;
    }
    let (code, finished) = match recorded {
        Some((c, t)) => (Some(c), t),
        None => (None, condo_runtime::state::now_rfc3339()),
    };
    // Whether the row is ephemeral decides how its commit is flushed: read it first.
    let lazy = matches!(db::get(&app.db.lock(), id), Ok(Some(r)) if r.c.config.ephemeral);
    let recorded = db::lazily(&mut app.db.lock(), lazy, |conn| {
        let tx = conn.transaction().ok()?;
        let changed = tx
            .execute(
                "UPDATE containers SET state = 'stopped', pid = NULL, monitor_pid = NULL, monitor_start = NULL,
                 finished_at = ?3, exit_code = ?4 WHERE id = ?1 AND monitor_pid = ?2",
                params![id, monitor_pid, finished, code],
            )
            .unwrap_or(0);
        if changed == 0 {
            return None;
        }
        let row = db::get(&tx, id).ok()??;
        let mut attrs = vec![("name", row.c.name.clone())];
        if let Some(c) = code {
            attrs.push(("exit_code", c.to_string()));
        }
        let ev = db::event(&tx, &row.c.tenant, "die", id, &attrs).ok()?;
        tx.commit().ok()?;
        Some((row, ev))
    });
    let Some((row, ev)) = recorded else { return };
    crate::network::leave_container(app, id).await;
    app.emit(ev);
    if let Some(delay) = restart_delay(&row) {
        schedule_restart(app, id, delay);
    }
}

/// Whether the policy restarts this row's container now that it stopped, and after how long.
fn restart_delay(row: &ContainerRow) -> Option<Duration> {
    if row.stop_requested {
        return None;
    }
    let p = row.c.config.restart;
    let wanted = match p.policy {
        RestartKind::No => false,
        RestartKind::Always | RestartKind::UnlessStopped => true,
        RestartKind::OnFailure => {
            row.c.exit_code != Some(0)
                && (p.max_retries == 0 || row.c.restart_count < p.max_retries)
        }
    };
    if !wanted {
        return None;
    }
    let ran = match (&row.c.started_at, &row.c.finished_at) {
        (Some(a), Some(b)) => crate::logs::parse_time(b)
            .unwrap_or(0)
            .saturating_sub(crate::logs::parse_time(a).unwrap_or(0)),
        _ => 0,
    };
    if ran >= STABLE_RUN * 1_000_000_000 {
        return Some(Duration::from_millis(100));
    }
    let exp = row.c.restart_count.min(9);
    Some((Duration::from_millis(100) * 2u32.pow(exp)).min(MAX_BACKOFF))
}

/// Marks the container `restarting` and starts it again after `delay`, unless stopped meanwhile.
fn schedule_restart(app: &Arc<App>, id: &str, delay: Duration) {
    {
        let conn = app.db.lock();
        let _ = conn.execute(
            "UPDATE containers SET state = 'restarting' WHERE id = ?1 AND state = 'stopped' AND stop_requested = 0",
            [id],
        );
    }
    let app = app.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let slot = app.slot(&id);
        let _g = slot.ops.lock().await;
        let row = match db::get(&app.db.lock(), &id) {
            Ok(Some(r)) => r,
            _ => return,
        };
        if row.c.state != ContainerState::Restarting || row.stop_requested {
            return;
        }
        if let Err(e) = start_locked(&app, &id, true).await {
            tracing::warn!(container = %id, "restart failed: {}", e.0.message);
            let _ = app.db.lock().execute(
                "UPDATE containers SET state = 'stopped' WHERE id = ?1 AND state = 'restarting'",
                [&id],
            );
        }
    });
}

/// Stops the container: `signal`, then SIGKILL after `timeout`; the caller holds its ops lock.
pub async fn stop_locked(
    app: &Arc<App>,
    id: &str,
    signal: i32,
    timeout: Duration,
) -> ApiResult<()> {
    let row = db::get(&app.db.lock(), id)?.ok_or_else(|| ApiError::not_found("container", id))?;
    app.db.lock().execute(
        "UPDATE containers SET stop_requested = 1, state = CASE WHEN state = 'restarting' THEN 'stopped' ELSE state END WHERE id = ?1",
        [id],
    )?;
    let (Some(mpid), Some(mstart)) = (row.monitor_pid, row.monitor_start) else {
        return Ok(());
    };
    if !row.c.state.is_live() {
        return Ok(());
    }
    let root = app.paths.runtime.clone();
    let rid = id.to_string();
    let _ =
        tokio::task::spawn_blocking(move || condo_runtime::kill::kill(&root, &rid, signal, false))
            .await;
    if tokio::time::timeout(timeout, monitor::wait_exit(mpid, mstart))
        .await
        .is_err()
    {
        let root = app.paths.runtime.clone();
        let rid = id.to_string();
        let _ = tokio::task::spawn_blocking(move || {
            condo_runtime::kill::kill(&root, &rid, libc::SIGKILL, true)
        })
        .await;
        if tokio::time::timeout(Duration::from_secs(10), monitor::wait_exit(mpid, mstart))
            .await
            .is_err()
        {
            return Err(ApiError::internal(format!(
                "container \"{}\" did not stop",
                row.c.name
            )));
        }
    }
    record_exit(app, id, mpid).await;
    Ok(())
}

/// Brings the database in line with the host after a start (or a crash): re-attaches to live
/// monitors, records the runs that ended while we were away, removes leftovers, and starts
/// what the restart policies ask for.
pub async fn reconcile(app: &Arc<App>) -> anyhow::Result<()> {
    let rows = db::list(&app.db.lock(), None)?;
    let known: std::collections::HashSet<String> = rows.iter().map(|r| r.c.id.clone()).collect();
    for row in &rows {
        let id = &row.c.id;
        let dir = app.paths.dir(id);
        if row.c.config.rootfs.is_none() {
            // Mounted from creation to deletion; a snapshot cut short, or a reboot, left it not.
            let target = dir.join("rootfs");
            // The range it holds (a container from before ranges gets one at its next start).
            let ids = crate::idrange::get(&app.db.lock(), id)?;
            if let Err(e) = crate::storage::mount_instance(&app.storage.instances, id, &target, ids)
            {
                tracing::warn!(container = %id, "its root filesystem: {e}");
            }
        }
        // A monitor may have been started just before a crash, before its row said so.
        let (mpid, mstart) = match (row.monitor_pid, row.monitor_start) {
            (Some(p), Some(s)) if s != 0 => (Some(p), Some(s)),
            _ => match monitor::read_pid_file(&dir) {
                Some((p, s)) => (Some(p), Some(s)),
                None => (row.monitor_pid, row.monitor_start),
            },
        };
        match (mpid, mstart) {
            (Some(p), Some(s)) if monitor::alive(p, s) => {
                let mut state = runtime_state(app, id);
                // Frozen while the row says running: an operation (a live snapshot) was cut
                // short between its pause and its resume. Only a finished pause says paused.
                if state == ContainerState::Paused && row.c.state == ContainerState::Running {
                    match condo_runtime::pause::resume(&app.paths.runtime, id) {
                        Ok(()) => state = ContainerState::Running,
                        Err(e) => tracing::warn!(container = %id, "cannot thaw it: {e}"),
                    }
                }
                app.db.lock().execute(
                    "UPDATE containers SET state = ?2, monitor_pid = ?3, monitor_start = ?4 WHERE id = ?1",
                    params![id, state.as_str(), p, s as i64],
                )?;
                watch(app, id, p, s);
                if let Some(h) = row.c.config.healthcheck.clone() {
                    crate::health::start(app, id, p, h);
                }
            }
            (Some(p), _) if row.c.state.is_live() => record_exit(app, id, p).await,
            _ if row.c.state.is_live() => {
                // Live in the database without any monitor to speak of.
                clear_runtime(app, id).await;
                app.db.lock().execute(
                    "UPDATE containers SET state = 'stopped', pid = NULL, monitor_pid = NULL, finished_at = ?2 WHERE id = ?1",
                    params![id, condo_runtime::state::now_rfc3339()],
                )?;
            }
            _ => {}
        }
    }
    // Runtime containers and directories that no row points at.
    if let Ok(list) = condo_runtime::container::list(&app.paths.runtime) {
        for c in list {
            if !known.contains(&c.saved.id) {
                clear_runtime(app, &c.saved.id).await;
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(app.paths.root.join("containers")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                if let Some((p, s)) = monitor::read_pid_file(&e.path()) {
                    if monitor::alive(p, s) {
                        let _ = condo_sys::process::kill(p, libc::SIGKILL);
                    }
                }
                clear_runtime(app, &name).await;
                // A create or delete cut short may have left its rootfs mounted here: never
                // recurse into a mounted instance (the orphan instance goes next, with its
                // storage, in `storage::remove_orphans`).
                match crate::storage::unmount_instance(&e.path().join("rootfs")) {
                    Ok(()) => {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                    Err(err) => tracing::warn!(container = %name, "leftover directory: {err}"),
                }
            }
        }
    }
    // Autostart and pending restarts.
    // Bound first: a guard in the loop's head would live through the loop.
    let rows = db::list(&app.db.lock(), None)?;
    for row in rows {
        let p = row.c.config.restart.policy;
        let autostart = match row.c.state {
            ContainerState::Restarting => true,
            ContainerState::Stopped => {
                row.c.started_at.is_some()
                    && (p == RestartKind::Always
                        || (p == RestartKind::UnlessStopped && !row.stop_requested))
            }
            _ => false,
        };
        if autostart {
            app.db.lock().execute(
                "UPDATE containers SET state = 'restarting', stop_requested = 0 WHERE id = ?1",
                [&row.c.id],
            )?;
            schedule_restart(app, &row.c.id, Duration::from_millis(0));
        }
    }
    Ok(())
}

/// Running or paused, as the runtime sees the container now.
fn runtime_state(app: &App, id: &str) -> ContainerState {
    match condo_runtime::container::Container::load(&app.paths.runtime, id).map(|c| c.status()) {
        Ok(condo_runtime::state::Status::Paused) => ContainerState::Paused,
        _ => ContainerState::Running,
    }
}
