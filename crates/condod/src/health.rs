//! Healthchecks: a command run inside a running container every `interval`, through the exec
//! helper; `retries` failures in a row make it unhealthy. During the `start_period` after a
//! start, checks run every `start_interval` and failures do not count, until one succeeds. The
//! state is kept in the container's row and each change of verdict is an event.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use condo_api::{ContainerState, ExecCreate, HealthState, HealthStatus, Healthcheck};
use rusqlite::params;

use crate::db;
use crate::monitor::{EXEC_OWN_FAILURE, EXEC_PROCESS_ENV};
use crate::App;

/// Most output kept from a check.
const KEEP: usize = 1024;

/// Starts the checks of the run watched by `monitor_pid` (they end with that run).
pub fn start(app: &Arc<App>, id: &str, monitor_pid: i32, check: Healthcheck) {
    // Saved before the answer to start, so the caller sees `starting` at once.
    let mut state = HealthState {
        status: HealthStatus::Starting,
        failing_streak: 0,
        last_check: None,
        last_exit_code: None,
        last_output: String::new(),
    };
    save(app, id, monitor_pid, &state);
    let app = app.clone();
    let id = id.to_string();
    let started = std::time::Instant::now();
    let period = Duration::from_secs(check.start_period);
    tokio::spawn(async move {
        let mut starting = !period.is_zero();
        loop {
            // Past the start period, or once healthy, the normal pace.
            starting = starting && started.elapsed() < period;
            let pause = if starting {
                check.start_interval.clamp(1, check.interval.max(1))
            } else {
                check.interval.max(1)
            };
            tokio::time::sleep(Duration::from_secs(pause)).await;
            let row = match db::get(&app.db.lock(), &id) {
                Ok(Some(r)) => r,
                _ => return,
            };
            if row.monitor_pid != Some(monitor_pid) {
                return;
            }
            if row.c.state != ContainerState::Running {
                continue;
            }
            let (code, output) = run(&app, &id, &check).await;
            state.last_check = Some(condo_runtime::state::now_rfc3339());
            state.last_exit_code = Some(code);
            let start = output.len().saturating_sub(KEEP);
            let cut = (start..=output.len())
                .find(|i| output.is_char_boundary(*i))
                .unwrap_or(output.len());
            state.last_output = output[cut..].to_string();
            let before = state.status;
            if code == 0 {
                state.failing_streak = 0;
                state.status = HealthStatus::Healthy;
                starting = false;
            } else if starting && started.elapsed() < period {
                // Still coming up: not a failure yet.
            } else {
                state.failing_streak += 1;
                if state.failing_streak >= check.retries.max(1) {
                    state.status = HealthStatus::Unhealthy;
                }
            }
            if !save(&app, &id, monitor_pid, &state) {
                return;
            }
            if before != state.status {
                let ev = db::event(
                    &app.db.lock(),
                    &row.c.tenant,
                    "health_status",
                    &id,
                    &[
                        ("name", row.c.name.clone()),
                        ("status", state.status.to_string()),
                    ],
                );
                if let Ok(ev) = ev {
                    app.emit(ev);
                }
            }
        }
    });
}

/// Writes the state if the row is still on this run; false once it is not.
fn save(app: &App, id: &str, monitor_pid: i32, state: &HealthState) -> bool {
    let text = serde_json::to_string(state).unwrap_or_default();
    let conn = app.db.lock();
    matches!(
        conn.execute(
            "UPDATE containers SET health = ?3 WHERE id = ?1 AND monitor_pid = ?2",
            params![id, monitor_pid, text]
        ),
        Ok(1)
    )
}

/// Runs one check: its exit code (-1 when it could not run or timed out) and its output.
async fn run(app: &App, id: &str, check: &Healthcheck) -> (i32, String) {
    let cfg = match std::fs::read(app.paths.bundle(id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    {
        Some(c) => c,
        None => return (-1, "cannot read the container's config".into()),
    };
    let x = ExecCreate {
        command: check.command.clone(),
        ..Default::default()
    };
    let process = crate::spec::exec_process(&cfg["process"], &x);
    let child = tokio::process::Command::new(&app.paths.monitor_bin)
        .arg("exec")
        .arg("--runtime-root")
        .arg(&app.paths.runtime)
        .arg("--id")
        .arg(id)
        .env(EXEC_PROCESS_ENV, process.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(check.timeout.max(1)), child).await {
        Err(_) => (
            -1,
            format!("the check took longer than {} s", check.timeout),
        ),
        Ok(Err(e)) => (-1, format!("cannot run the check: {e}")),
        Ok(Ok(o)) => {
            let code = o.status.code().unwrap_or(-1);
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            if code == EXEC_OWN_FAILURE && o.stderr.starts_with(b"condo-monitor exec:") {
                return (-1, text);
            }
            (code, text)
        }
    }
}
