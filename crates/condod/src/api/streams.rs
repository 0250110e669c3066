//! Answers that stream JSON lines: events, logs and stats.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use condo_api::{ContainerState, Stats};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::App;

type Q = Query<HashMap<String, String>>;

/// A response that sends each item of `rx` as one JSON line.
pub fn ndjson<T: Serialize + Send + 'static>(mut rx: mpsc::Receiver<T>) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| {
            o.map(|v| {
                let mut line = serde_json::to_vec(&v).unwrap_or_default();
                line.push(b'\n');
                Ok::<_, std::io::Error>(axum::body::Bytes::from(line))
            })
        })
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `GET /v1/events`.
pub async fn events(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Response> {
    let since = match q.get("since") {
        Some(s) => s.parse::<i64>().map_err(|_| {
            ApiError::invalid("since", format!("since \"{s}\" is not a sequence number"))
        })?,
        None => i64::MAX,
    };
    let follow = super::flag_or(&q, "follow", true)?;
    let mut live = app.events.subscribe();
    let scope = caller.scope().map(String::from);
    let past = if since == i64::MAX {
        Vec::new()
    } else {
        db::events_since(&app.db.lock(), scope.as_deref(), since)?
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut last = since.min(i64::MAX - 1);
        for e in past {
            last = e.seq;
            if tx.send(e).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        loop {
            let e = tokio::select! {
                e = live.recv() => e,
                _ = tx.closed() => return,
            };
            match e {
                Ok(e)
                    if scope.as_deref().is_none_or(|t| t == e.tenant)
                        && (since == i64::MAX || e.seq > last) =>
                {
                    last = e.seq;
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    Ok(ndjson(rx))
}

/// `GET /v1/containers/{id}/logs`.
pub async fn logs(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Query(q): Q,
) -> ApiResult<Response> {
    let row = super::containers::find(&app, &caller, &r)?;
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("all") => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| ApiError::invalid("tail", format!("tail \"{t}\" is not a count")))?,
        ),
    };
    let since = match q.get("since") {
        Some(s) => Some(crate::logs::parse_time(s).ok_or_else(|| {
            ApiError::invalid(
                "since",
                format!(
                    "since \"{s}\": use RFC 3339 (2026-01-02T15:04:05Z) or seconds since the epoch"
                ),
            )
        })?),
        None => None,
    };
    let query = crate::logs::Query {
        tail,
        since,
        follow: super::flag(&q, "follow")?,
    };
    let dir = app.paths.dir(&row.c.id);
    let (tx, rx) = mpsc::channel(1024);
    let id = row.c.id.clone();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let done = || match db::get(&app2.db.lock(), &id) {
            Ok(Some(r)) => !(r.c.state.is_live() || r.c.state == ContainerState::Restarting),
            _ => true,
        };
        crate::logs::read(&dir, &query, done, tx);
    });
    Ok(ndjson(rx))
}

/// Raw counters of one sample.
struct Sample {
    at: Instant,
    cpu: u64,
    stats: Stats,
}

fn sample(app: &App, id: &str, name: &str) -> Result<Sample, ApiError> {
    let c = condo_runtime::container::Container::load(&app.paths.runtime, id)
        .map_err(|_| ApiError::conflict(format!("container \"{name}\" is not running")))?;
    let s = c
        .cgroup()
        .stats()
        .map_err(|e| ApiError::internal(format!("stats: {e}")))?;
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .find_map(|k| s.memory.raw.get(*k))
        .copied()
        .unwrap_or(0);
    let io = |op: &str| {
        s.blkio
            .io_service_bytes_recursive
            .iter()
            .filter(|e| e.op.eq_ignore_ascii_case(op))
            .map(|e| e.value)
            .sum()
    };
    let limit = s.memory.usage.limit;
    let (net_rx_bytes, net_tx_bytes) = app.network.traffic(id);
    Ok(Sample {
        at: Instant::now(),
        cpu: s.cpu.usage.total,
        stats: Stats {
            id: id.to_string(),
            name: name.to_string(),
            time: condo_runtime::state::now_rfc3339(),
            cpu_percent: 0.0,
            cpu_total_ns: s.cpu.usage.total,
            memory_bytes: s.memory.usage.usage.saturating_sub(inactive),
            memory_limit: if limit >= 1 << 60 { 0 } else { limit },
            pids: s.pids.current,
            io_read_bytes: io("read"),
            io_write_bytes: io("write"),
            net_rx_bytes,
            net_tx_bytes,
        },
    })
}

fn percent(prev: &Sample, now: &Sample) -> f64 {
    let wall = now.at.duration_since(prev.at).as_nanos() as f64;
    if wall <= 0.0 {
        return 0.0;
    }
    let p = now.cpu.saturating_sub(prev.cpu) as f64 / wall * 100.0;
    (p * 100.0).round() / 100.0
}

/// `GET /v1/containers/{id}/stats`.
pub async fn stats(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    Query(q): Q,
) -> ApiResult<Response> {
    let row = super::containers::find(&app, &caller, &r)?;
    if !row.c.state.is_live() {
        return Err(ApiError::conflict(format!(
            "container \"{}\" is {}: no stats",
            row.c.name, row.c.state
        )));
    }
    let (id, name) = (row.c.id.clone(), row.c.name.clone());
    let first = sample(&app, &id, &name)?;
    if !super::flag(&q, "stream")? {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut now = sample(&app, &id, &name)?;
        now.stats.cpu_percent = percent(&first, &now);
        return Ok(Json(now.stats).into_response());
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut prev = first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
            let Ok(mut now) = sample(&app, &id, &name) else {
                return;
            };
            now.stats.cpu_percent = percent(&prev, &now);
            if tx.send(now.stats.clone()).await.is_err() {
                return;
            }
            prev = now;
        }
    });
    Ok(ndjson(rx))
}
