//! The daemon's state in SQLite: numbered migrations, container rows and events.
//!
//! Every row carries its tenant. Changes and the events that report them are written in one
//! transaction; WAL with `synchronous=FULL` makes each commit durable before we answer.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use condo_api::{Container, ContainerCreate, ContainerState, Event};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// The tenant an admin's resources belong to unless another is named.
pub const DEFAULT_TENANT: &str = "default";

/// Schema changes, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: tenants, tokens, containers, events.
    "CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    INSERT INTO tenants (id, name, created_at) VALUES ('default', 'default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT
    );
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        config TEXT NOT NULL,
        restart_policy TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        exit_code INTEGER,
        restart_count INTEGER NOT NULL DEFAULT 0,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        monitor_pid INTEGER,
        monitor_start INTEGER,
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        attributes TEXT NOT NULL
    );
    CREATE INDEX events_tenant ON events (tenant_id, seq);",
    // 2: the healthcheck's state (JSON) of the current run.
    "ALTER TABLE containers ADD COLUMN health TEXT;",
    // 3: quotas of tenants (NULL: no limit), users, tokens acting as users, the audit log.
    "ALTER TABLE tenants ADD COLUMN quota_containers INTEGER;
    ALTER TABLE tenants ADD COLUMN quota_memory INTEGER;
    ALTER TABLE tenants ADD COLUMN quota_cpus REAL;
    ALTER TABLE tenants ADD COLUMN quota_disk INTEGER;
    ALTER TABLE tenants ADD COLUMN quota_networks INTEGER;
    ALTER TABLE tenants ADD COLUMN quota_bandwidth INTEGER;
    ALTER TABLE tenants ADD COLUMN quota_monthly_traffic INTEGER;
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (tenant_id, name)
    );
    ALTER TABLE tokens ADD COLUMN user_id TEXT REFERENCES users(id) ON DELETE CASCADE;
    CREATE INDEX tokens_user ON tokens (user_id);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        principal TEXT NOT NULL,
        token_id TEXT,
        tenant_id TEXT NOT NULL,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        resource TEXT NOT NULL,
        status INTEGER NOT NULL,
        result TEXT NOT NULL,
        message TEXT
    );
    CREATE INDEX audit_tenant ON audit (tenant_id, seq);
    CREATE INDEX audit_time ON audit (time);",
    // 4: named volumes.
    "CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        UNIQUE (tenant_id, name)
    );",
    // 5: the user-namespace id range each isolated container holds (see idrange.rs).
    "CREATE TABLE id_ranges (
        slot INTEGER PRIMARY KEY,
        container_id TEXT NOT NULL UNIQUE
    );",
    // 6: what each tenant's own images hold (kept in step with its image names), and the
    // traffic each container moved in each calendar month (kept after the container goes, so
    // a tenant's monthly total counts it).
    "CREATE TABLE tenant_images (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
        images INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );
    CREATE TABLE traffic (
        container_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        period TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (container_id, period)
    );
    CREATE INDEX traffic_tenant ON traffic (tenant_id, period);",
];

/// The database handle, shared by every request.
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn =
            Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for one short piece of work.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs `work` (which commits what it starts) with commits that, when `lazy`, are written to
/// the log without waiting for the disk (`synchronous=NORMAL`): a daemon crash loses none of
/// them, a power loss may lose those since the last durable commit. For what is thrown away
/// anyway: an ephemeral container's state, audit rows of requests about it.
pub fn lazily<T>(conn: &mut Connection, lazy: bool, work: impl FnOnce(&mut Connection) -> T) -> T {
    // SQLite refuses to change the level inside a transaction, hence around the work.
    if !lazy || conn.pragma_update(None, "synchronous", "NORMAL").is_err() {
        return work(conn);
    }
    let out = work(conn);
    if let Err(e) = conn.pragma_update(None, "synchronous", "FULL") {
        tracing::error!("cannot make commits durable again: {e}");
    }
    out
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// A container row.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    /// The wire view.
    pub c: Container,
    /// A stop through the API is under way or done (restart policies stand down).
    pub stop_requested: bool,
    /// The monitor's pid while it runs.
    pub monitor_pid: Option<i32>,
    /// The monitor's start time, to tell it from a reused pid.
    pub monitor_start: Option<u64>,
}

/// Columns in the order [`row`] reads them.
pub const COLUMNS: &str =
    "id, tenant_id, name, state, config, created_at, started_at, finished_at, exit_code, \
     restart_count, stop_requested, pid, monitor_pid, monitor_start, health, \
     (SELECT slot FROM id_ranges WHERE id_ranges.container_id = containers.id)";

/// Decodes a row selected with [`COLUMNS`].
pub fn row(r: &Row<'_>) -> rusqlite::Result<ContainerRow> {
    let state: String = r.get(3)?;
    let config: String = r.get(4)?;
    let config: ContainerCreate = serde_json::from_str(&config).unwrap_or_default();
    let monitor_start: Option<i64> = r.get(13)?;
    let health: Option<String> = r.get(14)?;
    let id_slot: Option<u32> = r.get(15)?;
    let isolation = condo_api::Isolation {
        id_base: id_slot.map(|s| crate::idrange::FIRST + s * crate::idrange::SIZE),
        id_count: id_slot.map(|_| crate::idrange::SIZE),
        seccomp: !config.privileged,
        reduced_capabilities: !config.privileged,
        privileged: config.privileged,
    };
    Ok(ContainerRow {
        c: Container {
            id: r.get(0)?,
            tenant: r.get(1)?,
            name: r.get(2)?,
            state: ContainerState::parse(&state).unwrap_or(ContainerState::Stopped),
            config,
            created_at: r.get(5)?,
            started_at: r.get(6)?,
            finished_at: r.get(7)?,
            exit_code: r.get(8)?,
            restart_count: r.get(9)?,
            pid: r.get(11)?,
            health: health.and_then(|h| serde_json::from_str(&h).ok()),
            isolation,
            endpoint: None,
        },
        stop_requested: r.get(10)?,
        monitor_pid: r.get(12)?,
        monitor_start: monitor_start.map(|v| v as u64),
    })
}

/// The container `id`, whatever its tenant.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ContainerRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
}

/// Containers of `tenant` (every tenant when `None`), oldest first.
pub fn list(conn: &Connection, tenant: Option<&str>) -> rusqlite::Result<Vec<ContainerRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM containers WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY created_at, id"
    ))?;
    let rows = st.query_map(params![tenant], row)?;
    rows.collect()
}

/// Finds a container by id, name or unique id prefix within `tenant` (every tenant when `None`).
pub fn find(
    conn: &Connection,
    tenant: Option<&str>,
    reference: &str,
) -> rusqlite::Result<Option<ContainerRow>> {
    let scoped = format!("SELECT {COLUMNS} FROM containers WHERE (?1 IS NULL OR tenant_id = ?1)");
    let exact = conn
        .query_row(
            &format!("{scoped} AND (id = ?2 OR name = ?2) ORDER BY id = ?2 DESC LIMIT 1"),
            params![tenant, reference],
            row,
        )
        .optional()?;
    if exact.is_some() || reference.len() < 3 || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(exact);
    }
    let mut st = conn.prepare(&format!("{scoped} AND id LIKE ?2 || '%' LIMIT 2"))?;
    let found: Vec<ContainerRow> = st
        .query_map(params![tenant, reference], row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(if found.len() == 1 {
        found.into_iter().next()
    } else {
        None
    })
}

/// Records a container's event in the current transaction and returns it.
pub fn event(
    conn: &Connection,
    tenant: &str,
    action: &str,
    id: &str,
    attributes: &[(&str, String)],
) -> rusqlite::Result<Event> {
    event_of(conn, "container", tenant, action, id, attributes)
}

/// Records an event about a resource of `kind` in the current transaction and returns it.
pub fn event_of(
    conn: &Connection,
    kind: &str,
    tenant: &str,
    action: &str,
    id: &str,
    attributes: &[(&str, String)],
) -> rusqlite::Result<Event> {
    let time = condo_runtime::state::now_rfc3339();
    let attributes: std::collections::BTreeMap<String, String> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let attrs = serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "INSERT INTO events (tenant_id, time, kind, action, resource_id, attributes) VALUES (?1, ?2, ?6, ?3, ?4, ?5)",
        params![tenant, time, action, id, attrs, kind],
    )?;
    Ok(Event {
        seq: conn.last_insert_rowid(),
        time,
        tenant: tenant.to_string(),
        kind: kind.to_string(),
        action: action.to_string(),
        id: id.to_string(),
        attributes,
    })
}

/// How long the audit log and the events are kept, in days (0: for ever).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Audit rows.
    pub audit_days: u32,
    /// Events (what `GET /v1/events?since=` can replay).
    pub event_days: u32,
}

/// Deletes audit rows and events older than `keep` allows, a few thousand rows per lock so
/// requests are not held up behind a large first pass: the numbers deleted.
pub fn prune_history(db: &Db, keep: Retention, now_secs: i64) -> rusqlite::Result<(usize, usize)> {
    let mut gone = [0usize; 2];
    for (n, (table, days)) in [("audit", keep.audit_days), ("events", keep.event_days)]
        .into_iter()
        .enumerate()
    {
        if days == 0 {
            continue;
        }
        let cutoff = condo_runtime::state::rfc3339(now_secs - i64::from(days) * 86_400, 0);
        let sql = format!(
            "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} WHERE time < ?1 ORDER BY seq LIMIT 5000)"
        );
        loop {
            let k = db.lock().execute(&sql, [&cutoff])?;
            gone[n] += k;
            if k < 5000 {
                break;
            }
        }
    }
    Ok((gone[0], gone[1]))
}

/// Events after `since` for `tenant` (all when `None`), oldest first.
pub fn events_since(
    conn: &Connection,
    tenant: Option<&str>,
    since: i64,
) -> rusqlite::Result<Vec<Event>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, time, tenant_id, kind, action, resource_id, attributes FROM events
         WHERE seq > ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY seq LIMIT 10000",
    )?;
    let rows = st.query_map(params![since, tenant], |r| {
        let attrs: String = r.get(6)?;
        Ok(Event {
            seq: r.get(0)?,
            time: r.get(1)?,
            tenant: r.get(2)?,
            kind: r.get(3)?,
            action: r.get(4)?,
            id: r.get(5)?,
            attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_audit_rows_and_events_are_pruned_and_recent_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let now = 1_800_000_000;
        let day = 86_400;
        {
            let conn = db.lock();
            conn.execute_batch("BEGIN").unwrap();
            for (age, n) in [(400 * day, 7000), (10 * day, 3), (0, 2)] {
                let t = condo_runtime::state::rfc3339(now - age, 5);
                for _ in 0..n {
                    conn.execute(
                        "INSERT INTO audit (time, principal, tenant_id, method, route, resource, status, result)
                         VALUES (?1, 'root', 'default', 'POST', '/v1/x', 'x', 200, 'ok')",
                        [&t],
                    )
                    .unwrap();
                    conn.execute(
                        "INSERT INTO events (tenant_id, time, kind, action, resource_id, attributes)
                         VALUES ('default', ?1, 'container', 'start', 'x', '{}')",
                        [&t],
                    )
                    .unwrap();
                }
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        let count = |table: &str| -> i64 {
            db.lock()
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        let keep = Retention {
            audit_days: 365,
            event_days: 7,
        };
        assert_eq!(prune_history(&db, keep, now).unwrap(), (7000, 7003));
        assert_eq!((count("audit"), count("events")), (5, 2));
        // Nothing more to do the second time; 0 days keeps everything.
        assert_eq!(prune_history(&db, keep, now).unwrap(), (0, 0));
        let forever = Retention {
            audit_days: 0,
            event_days: 0,
        };
        assert_eq!(
            prune_history(&db, forever, now + 1000 * day).unwrap(),
            (0, 0)
        );
        assert_eq!((count("audit"), count("events")), (5, 2));
    }
}
