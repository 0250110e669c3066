//! Named volumes: a row per volume (with its tenant) and a directory under `ROOT/volumes/ID`.
//!
//! A container names its volumes in its configuration (`NAME:/path[:ro]`); the name is resolved
//! in the container's tenant each time its bundle is written, so a volume is made on first use
//! and its data outlives every container that mounts it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use condo_api::{ContainerCreate, Volume};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{ApiError, ApiResult};
use crate::App;

/// What one entry of a container's `volumes` mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A named volume.
    Named(String),
    /// A host directory or file (absolute).
    Host(String),
}

/// One parsed `SOURCE:/CONTAINER[:ro|rw]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// What is mounted.
    pub source: Source,
    /// Where, inside the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// Parses `NAME:/path[:ro]` or `/host:/path[:ro]`; the message says what is wrong.
pub fn parse(v: &str) -> Result<MountSpec, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, target, ro) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        [_, _, o] => return Err(format!("option \"{o}\": use ro or rw")),
        _ => return Err("use NAME:/PATH[:ro] or /HOST/PATH:/PATH[:ro]".into()),
    };
    if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
        return Err(format!(
            "\"{target}\" must be an absolute path inside the container, without .."
        ));
    }
    let source = if src.starts_with('/') {
        if src.split('/').any(|c| c == "..") {
            return Err(format!("host path \"{src}\" must not hold .."));
        }
        Source::Host(src.to_string())
    } else if crate::api::valid_name(src) {
        Source::Named(src.to_string())
    } else {
        return Err(format!(
            "\"{src}\" is neither an absolute host path nor a volume name (letters, digits and _ . -)"
        ));
    };
    Ok(MountSpec {
        source,
        target: target.to_string(),
        read_only: ro,
    })
}

/// The named volumes a configuration mounts.
pub fn names(c: &ContainerCreate) -> Vec<String> {
    c.volumes
        .iter()
        .filter_map(|v| match parse(v) {
            Ok(MountSpec {
                source: Source::Named(n),
                ..
            }) => Some(n),
            _ => None,
        })
        .collect()
}

/// A volume row.
#[derive(Debug, Clone)]
pub struct VolumeRow {
    /// Its id (the name of its directory).
    pub id: String,
    /// The wire view, without size and users.
    pub v: Volume,
}

/// The directory that holds volume `id`'s data.
pub fn data_dir(app: &App, id: &str) -> PathBuf {
    app.paths.root.join("volumes").join(id).join("data")
}

fn row(app: &App, r: &rusqlite::Row<'_>) -> rusqlite::Result<VolumeRow> {
    let id: String = r.get(0)?;
    let labels: String = r.get(3)?;
    Ok(VolumeRow {
        v: Volume {
            name: r.get(2)?,
            tenant: r.get(1)?,
            created_at: r.get(4)?,
            mountpoint: Some(data_dir(app, &id).display().to_string()),
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            size: None,
            used_by: Vec::new(),
        },
        id,
    })
}

const COLUMNS: &str = "id, tenant_id, name, labels, created_at";

/// Volumes of `tenant` (every tenant when `None`), by name.
pub fn list(app: &App, conn: &Connection, tenant: Option<&str>) -> ApiResult<Vec<VolumeRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY name, tenant_id"
    ))?;
    let rows = st.query_map(params![tenant], |r| row(app, r))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The volume `name` among those of `scope` (every tenant when `None`), the one of `own`
/// first when several tenants use the name.
pub fn find(
    app: &App,
    conn: &Connection,
    scope: Option<&str>,
    own: &str,
    name: &str,
) -> ApiResult<Option<VolumeRow>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM volumes WHERE name = ?2 AND (?1 IS NULL OR tenant_id = ?1)
                 ORDER BY tenant_id = ?3 DESC LIMIT 1"
            ),
            params![scope, name, own],
            |r| row(app, r),
        )
        .optional()?)
}

/// Names of the containers of `tenant` that mount volume `name`, with whether each is live.
pub fn users(conn: &Connection, tenant: &str, name: &str) -> ApiResult<Vec<(String, bool)>> {
    Ok(crate::db::list(conn, Some(tenant))?
        .into_iter()
        .filter(|r| names(&r.c.config).iter().any(|n| n == name))
        .map(|r| {
            let live = r.c.state.is_live() || r.c.state == condo_api::ContainerState::Restarting;
            (r.c.name, live)
        })
        .collect())
}

/// Creates volume `name` of `tenant`: its directory, then its row and event. A name already
/// taken is a conflict; nothing is left behind on failure.
pub fn create(
    app: &App,
    tenant: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> ApiResult<(VolumeRow, condo_api::Event)> {
    let id = crate::auth::random_hex(8).map_err(|e| ApiError::internal(e.to_string()))?;
    let dir = data_dir(app, &id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let undo = |e: ApiError| {
        let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(&dir));
        e
    };
    let labels_text =
        serde_json::to_string(labels).map_err(|e| undo(ApiError::internal(e.to_string())))?;
    let mut conn = app.db.lock();
    let r = (|| -> ApiResult<condo_api::Event> {
        let tx = conn.transaction()?;
        let r = tx.execute(
            "INSERT INTO volumes (id, tenant_id, name, labels, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, tenant, name, labels_text, condo_runtime::state::now_rfc3339()],
        );
        if let Err(rusqlite::Error::SqliteFailure(f, _)) = &r {
            if f.code == rusqlite::ErrorCode::ConstraintViolation {
                return Err(ApiError::conflict(format!(
                    "volume \"{name}\" already exists"
                )));
            }
        }
        r?;
        let ev = crate::db::event_of(
            &tx,
            "volume",
            tenant,
            "create",
            &id,
            &[("name", name.to_string())],
        )?;
        tx.commit()?;
        Ok(ev)
    })();
    let ev = r.map_err(undo)?;
    let v = find(app, &conn, Some(tenant), tenant, name)?
        .ok_or_else(|| ApiError::internal(format!("volume \"{name}\" vanished")))?;
    Ok((v, ev))
}

/// Removes the row of `v` (with its event), then its directory.
pub fn remove(app: &App, v: &VolumeRow) -> ApiResult<condo_api::Event> {
    let ev = {
        let mut conn = app.db.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM volumes WHERE id = ?1", [&v.id])?;
        let ev = crate::db::event_of(
            &tx,
            "volume",
            &v.v.tenant,
            "delete",
            &v.id,
            &[("name", v.v.name.clone())],
        )?;
        tx.commit()?;
        ev
    };
    let dir = app.paths.root.join("volumes").join(&v.id);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(volume = %v.v.name, "cannot remove {}: {e}", dir.display());
        }
    }
    Ok(ev)
}

/// Bytes the files under `dir` take (not following links, not crossing into other mounts).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.dev() != top.dev() {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// The configuration `c` of a container of `tenant` with each named volume replaced by its
/// directory; volumes that do not exist yet are made (a volume is made on first use).
/// Returns the events of the volumes it made.
pub fn resolve(
    app: &App,
    tenant: &str,
    c: &ContainerCreate,
) -> ApiResult<(ContainerCreate, Vec<condo_api::Event>)> {
    let mut out = c.clone();
    let mut made = Vec::new();
    for v in out.volumes.iter_mut() {
        let m =
            parse(v).map_err(|e| ApiError::invalid("volumes", format!("volume \"{v}\": {e}")))?;
        let Source::Named(name) = &m.source else {
            continue;
        };
        let found = find(app, &app.db.lock(), Some(tenant), tenant, name)?;
        let row = match found {
            Some(r) => r,
            None => match create(app, tenant, name, &BTreeMap::new()) {
                Ok((r, ev)) => {
                    made.push(ev);
                    r
                }
                // Made by a concurrent request between our look and our insert.
                Err(e) if e.0.code == condo_api::ErrorCode::Conflict => {
                    find(app, &app.db.lock(), Some(tenant), tenant, name)?
                        .ok_or_else(|| ApiError::internal(format!("volume \"{name}\" vanished")))?
                }
                Err(e) => return Err(e),
            },
        };
        let dir = data_dir(app, &row.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
        *v = format!(
            "{}:{}{}",
            dir.display(),
            m.target,
            if m.read_only { ":ro" } else { "" }
        );
    }
    Ok((out, made))
}

/// Undoes the volumes a failed container create made: their rows, events and directories.
pub fn forget(app: &App, made: &[condo_api::Event]) {
    for ev in made {
        let r = (|| -> rusqlite::Result<()> {
            let mut conn = app.db.lock();
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM volumes WHERE id = ?1", [&ev.id])?;
            tx.execute("DELETE FROM events WHERE seq = ?1", [ev.seq])?;
            tx.commit()
        })();
        if let Err(e) = r {
            tracing::warn!(volume = %ev.id, "cannot undo the volume: {e}");
            continue;
        }
        let _ = std::fs::remove_dir_all(app.paths.root.join("volumes").join(&ev.id));
    }
}

/// At start, before any request: removes volume directories no row points at (a crash between
/// making the directory and recording the row, or between removing the row and the directory).
pub fn remove_orphans(app: &App) {
    let base = app.paths.root.join("volumes");
    let Ok(rd) = std::fs::read_dir(&base) else {
        return;
    };
    let known: std::collections::HashSet<String> = {
        let conn = app.db.lock();
        let ids = conn.prepare("SELECT id FROM volumes").and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        });
        match ids {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("volumes: cannot list them: {e}");
                return;
            }
        }
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if known.contains(&name) {
            continue;
        }
        match std::fs::remove_dir_all(e.path()) {
            Ok(()) => tracing::info!(volume = %name, "removed an orphan volume directory"),
            Err(err) => tracing::warn!(volume = %name, "orphan volume directory: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mounts() {
        let m = parse("data:/var/lib/data:ro").unwrap();
        assert_eq!(m.source, Source::Named("data".into()));
        assert_eq!(m.target, "/var/lib/data");
        assert!(m.read_only);
        let m = parse("/srv/x:/x").unwrap();
        assert_eq!(m.source, Source::Host("/srv/x".into()));
        assert!(!m.read_only);
        assert!(parse("data").is_err());
        assert!(parse("data:rel").is_err());
        assert!(parse("data:/x:rx").is_err());
        assert!(parse("da ta:/x").is_err());
        assert!(parse("./rel:/x").is_err());
        assert!(parse("/a/../b:/x").is_err());
        assert!(parse("d:/x/../../etc").is_err());
        let c = ContainerCreate {
            volumes: vec!["a:/a".into(), "/h:/h".into(), "b:/b:ro".into()],
            ..Default::default()
        };
        assert_eq!(names(&c), vec!["a".to_string(), "b".to_string()]);
    }
}
