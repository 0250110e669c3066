//! Tenant quotas: what a tenant uses, and the one admission check every create or resize makes.
//!
//! [`admit`] runs inside the transaction that writes the new row, and the database takes one
//! writer at a time, so concurrent creates cannot pass a limit together. A resource kind kept in
//! this database joins by adding its count to [`usage`] and calling [`admit`] with its [`Claim`]
//! before its insert. Networks live in condo-net's state: the network manager counts the
//! tenant's and calls [`admit_network`] under the lock that serialises its creates.

use condo_api::{ContainerCreate, ErrorBody, ErrorCode, Limits, Quota, Usage};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{ApiError, ApiResult};

/// What one change asks of a tenant's quota (or gives back).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claim {
    /// Containers.
    pub containers: u64,
    /// Memory limits, bytes.
    pub memory: u64,
    /// CPU limits, CPUs.
    pub cpus: f64,
    /// Disk limits of writable layers, bytes.
    pub disk: u64,
    /// Networks.
    pub networks: u64,
}

impl Claim {
    /// What a container with these limits holds.
    pub fn container(l: &Limits) -> Claim {
        Claim {
            containers: 1,
            memory: l.memory.unwrap_or(0),
            cpus: l.cpus.unwrap_or(0.0),
            disk: l.disk.unwrap_or(0),
            networks: 0,
        }
    }

    /// One network.
    pub fn network() -> Claim {
        Claim {
            networks: 1,
            ..Default::default()
        }
    }
}

/// Columns of `tenants` in the order [`quota_of`] reads them.
pub const QUOTA_COLUMNS: &str = "quota_containers, quota_memory, quota_cpus, quota_disk, \
    quota_networks, quota_bandwidth, quota_monthly_traffic";

/// Decodes the quota columns of a row, the first at `at`.
pub fn quota_of(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Quota> {
    let n = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(at + i)?.map(|v| v.max(0) as u64))
    };
    Ok(Quota {
        containers: n(0)?,
        memory: n(1)?,
        cpus: r.get(at + 2)?,
        disk: n(3)?,
        networks: n(4)?,
        bandwidth: n(5)?,
        monthly_traffic: n(6)?,
    })
}

/// The quota of `tenant`; `None` when there is no such tenant.
pub fn quota(conn: &Connection, tenant: &str) -> rusqlite::Result<Option<Quota>> {
    conn.query_row(
        &format!("SELECT {QUOTA_COLUMNS} FROM tenants WHERE id = ?1"),
        [tenant],
        |r| quota_of(r, 0),
    )
    .optional()
}

/// Stores `q` as the quota of `tenant`; false when there is no such tenant.
pub fn set(conn: &Connection, tenant: &str, q: &Quota) -> rusqlite::Result<bool> {
    let i = |v: Option<u64>| v.map(|v| v as i64);
    let n = conn.execute(
        "UPDATE tenants SET quota_containers = ?2, quota_memory = ?3, quota_cpus = ?4,
         quota_disk = ?5, quota_networks = ?6, quota_bandwidth = ?7, quota_monthly_traffic = ?8
         WHERE id = ?1",
        params![
            tenant,
            i(q.containers),
            i(q.memory),
            q.cpus,
            i(q.disk),
            i(q.networks),
            i(q.bandwidth),
            i(q.monthly_traffic)
        ],
    )?;
    Ok(n == 1)
}

/// A quota that can be stored: integers within SQLite's range, a positive CPU count.
pub fn check(q: &Quota, prefix: &str) -> ApiResult<()> {
    let ints = [
        ("containers", q.containers),
        ("memory", q.memory),
        ("disk", q.disk),
        ("networks", q.networks),
        ("bandwidth", q.bandwidth),
        ("monthly_traffic", q.monthly_traffic),
    ];
    for (name, v) in ints {
        if matches!(v, Some(v) if v > i64::MAX as u64) {
            let field = format!("{prefix}{name}");
            return Err(ApiError::invalid(
                &field,
                format!("{field}: at most {}", i64::MAX),
            ));
        }
    }
    if matches!(q.cpus, Some(c) if !(c.is_finite() && c >= 0.0)) {
        let field = format!("{prefix}cpus");
        return Err(ApiError::invalid(
            &field,
            format!("{field}: a number of CPUs, 0 or more"),
        ));
    }
    Ok(())
}

/// Records what `tenant`'s own images hold: `images` of them, `bytes` of distinct blobs.
pub fn set_images(
    conn: &Connection,
    tenant: &str,
    images: u64,
    bytes: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tenant_images (tenant_id, images, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant_id) DO UPDATE SET images = excluded.images, bytes = excluded.bytes",
        params![tenant, images as i64, bytes.min(i64::MAX as u64) as i64],
    )?;
    Ok(())
}

/// Records that container `container` of `tenant` has moved `bytes` in `period` (`YYYY-MM`).
pub fn set_traffic(
    conn: &Connection,
    container: &str,
    tenant: &str,
    period: &str,
    bytes: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO traffic (container_id, tenant_id, period, bytes) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (container_id, period) DO UPDATE SET bytes = MAX(bytes, excluded.bytes)",
        params![container, tenant, period, bytes.min(i64::MAX as u64) as i64],
    )?;
    Ok(())
}

/// The traffic `tenant`'s containers moved in `period`, bytes.
pub fn traffic(conn: &Connection, tenant: &str, period: &str) -> rusqlite::Result<u64> {
    let b: i64 = conn.query_row(
        "SELECT COALESCE(SUM(bytes), 0) FROM traffic WHERE tenant_id = ?1 AND period = ?2",
        params![tenant, period],
        |r| r.get(0),
    )?;
    Ok(b.max(0) as u64)
}

/// What `tenant` uses now.
pub fn usage(conn: &Connection, tenant: &str) -> rusqlite::Result<Usage> {
    let (containers, memory, cpus, disk) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(json_extract(config, '$.limits.memory')), 0),
                COALESCE(SUM(json_extract(config, '$.limits.cpus')), 0.0),
                COALESCE(SUM(json_extract(config, '$.limits.disk')), 0)
         FROM containers WHERE tenant_id = ?1",
        [tenant],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )?;
    let (images, image_bytes): (i64, i64) = conn
        .query_row(
            "SELECT images, bytes FROM tenant_images WHERE tenant_id = ?1",
            [tenant],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0));
    Ok(Usage {
        containers: containers.max(0) as u64,
        memory: memory.max(0) as u64,
        cpus,
        disk: (disk.max(0) as u64).saturating_add(image_bytes.max(0) as u64),
        // Counted by the network manager (see the module's note).
        networks: 0,
        images: images.max(0) as u64,
        traffic: traffic(conn, tenant, &condo_net::current_period())?,
    })
}

fn exceeded(message: String) -> ApiError {
    ApiError(ErrorBody::new(ErrorCode::QuotaExceeded, message))
}

/// Admits `claim` for `tenant`, counting `released` as given back (a resize): an error when a
/// limit would be passed. Call it in the transaction that stores the change.
pub fn admit(conn: &Connection, tenant: &str, claim: &Claim, released: &Claim) -> ApiResult<()> {
    let Some(q) = quota(conn, tenant)? else {
        return Err(ApiError::not_found("tenant", tenant));
    };
    let u = usage(conn, tenant)?;
    admit_counted(tenant, &q, &u, claim, released)
}

/// Admits one more network for `tenant`, which holds `in_use` networks now.
#[cfg_attr(not(test), allow(dead_code))]
pub fn admit_network(conn: &Connection, tenant: &str, in_use: u64) -> ApiResult<()> {
    let Some(q) = quota(conn, tenant)? else {
        return Err(ApiError::not_found("tenant", tenant));
    };
    let u = Usage {
        networks: in_use,
        ..usage(conn, tenant)?
    };
    admit_counted(tenant, &q, &u, &Claim::network(), &Claim::default())
}

fn admit_counted(
    tenant: &str,
    q: &Quota,
    u: &Usage,
    claim: &Claim,
    released: &Claim,
) -> ApiResult<()> {
    let after = |used: u64, add: u64, back: u64| used.saturating_sub(back).saturating_add(add);
    let counts = [
        (
            "containers",
            q.containers,
            claim.containers,
            after(u.containers, claim.containers, released.containers),
        ),
        (
            "networks",
            q.networks,
            claim.networks,
            after(u.networks, claim.networks, released.networks),
        ),
        (
            "memory",
            q.memory,
            claim.memory,
            after(u.memory, claim.memory, released.memory),
        ),
        (
            "disk",
            q.disk,
            claim.disk,
            after(u.disk, claim.disk, released.disk),
        ),
    ];
    for (what, max, asked, total) in counts {
        if let Some(max) = max {
            if asked > 0 && total > max {
                return Err(exceeded(format!(
                    "tenant \"{tenant}\" would have {what} {total}, over its quota of {max}"
                )));
            }
        }
    }
    if let Some(max) = q.cpus {
        let total = (u.cpus - released.cpus).max(0.0) + claim.cpus;
        // A thousandth of a CPU of slack for sums of decimal fractions.
        if claim.cpus > 0.0 && total > max + 1e-3 {
            return Err(exceeded(format!(
                "tenant \"{tenant}\" would have cpus {total}, over its quota of {max}"
            )));
        }
    }
    Ok(())
}

/// Admits container `c` for `tenant` (in place of limits `old` when resizing): a tenant with a
/// memory, CPU or disk quota needs each container to say its memory, CPU or disk limit.
pub fn admit_container(
    conn: &Connection,
    tenant: &str,
    c: &ContainerCreate,
    old: Option<&Limits>,
) -> ApiResult<()> {
    let Some(q) = quota(conn, tenant)? else {
        return Err(ApiError::not_found("tenant", tenant));
    };
    if q.memory.is_some() && c.limits.memory.is_none() {
        return Err(ApiError::invalid(
            "limits.memory",
            format!("limits.memory: tenant \"{tenant}\" has a memory quota, so each container needs a memory limit"),
        ));
    }
    if q.disk.is_some() && c.limits.disk.is_none() && c.rootfs.is_none() {
        return Err(ApiError::invalid(
            "limits.disk",
            format!("limits.disk: tenant \"{tenant}\" has a disk quota, so each container needs a disk limit"),
        ));
    }
    if q.cpus.is_some() && c.limits.cpus.is_none() {
        return Err(ApiError::invalid(
            "limits.cpus",
            format!("limits.cpus: tenant \"{tenant}\" has a CPU quota, so each container needs a CPU limit"),
        ));
    }
    let mut claim = Claim::container(&c.limits);
    let released = match old {
        Some(l) => {
            // A resize holds its container already.
            claim.containers = 0;
            let mut r = Claim::container(l);
            r.containers = 0;
            r
        }
        None => Claim::default(),
    };
    admit(conn, tenant, &claim, &released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, crate::db::Db) {
        let t = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(&t.path().join("db")).unwrap();
        (t, db)
    }

    fn add(conn: &Connection, id: &str, memory: u64) {
        let cfg = serde_json::json!({"limits": {"memory": memory, "cpus": 0.5}}).to_string();
        conn.execute(
            "INSERT INTO containers (id, tenant_id, name, state, config, restart_policy, created_at)
             VALUES (?1, 'default', ?1, 'created', ?2, 'no', 'now')",
            params![id, cfg],
        )
        .unwrap();
    }

    #[test]
    fn limits_hold_and_resizes_count_once() {
        let (_t, db) = db();
        let conn = db.lock();
        let q = Quota {
            containers: Some(2),
            memory: Some(100 << 20),
            cpus: Some(1.0),
            ..Default::default()
        };
        assert!(set(&conn, "default", &q).unwrap());
        assert_eq!(quota(&conn, "default").unwrap(), Some(q));
        let c = |m: u64| ContainerCreate {
            limits: Limits {
                memory: Some(m),
                cpus: Some(0.5),
                pids: None,
                disk: None,
            },
            ..Default::default()
        };
        admit_container(&conn, "default", &c(60 << 20), None).unwrap();
        add(&conn, "a", 60 << 20);
        let e = admit_container(&conn, "default", &c(60 << 20), None).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::QuotaExceeded, "{}", e.0.message);
        admit_container(&conn, "default", &c(40 << 20), None).unwrap();
        add(&conn, "b", 40 << 20);
        let e = admit_container(&conn, "default", &c(4 << 20), None).unwrap_err();
        assert!(e.0.message.contains("containers 3"), "{}", e.0.message);
        // Growing "a" from 60 to 61 MiB passes the memory quota; shrinking never fails.
        let old = Limits {
            memory: Some(60 << 20),
            cpus: Some(0.5),
            pids: None,
            disk: None,
        };
        assert!(admit_container(&conn, "default", &c(61 << 20), Some(&old)).is_err());
        admit_container(&conn, "default", &c(50 << 20), Some(&old)).unwrap();
        let e = admit_container(&conn, "default", &ContainerCreate::default(), None).unwrap_err();
        assert_eq!(e.0.field.as_deref(), Some("limits.memory"));
        let u = usage(&conn, "default").unwrap();
        assert_eq!((u.containers, u.memory, u.cpus), (2, 100 << 20, 1.0));
        assert!(admit(&conn, "nobody", &Claim::network(), &Claim::default()).is_err());
        set(
            &conn,
            "default",
            &Quota {
                networks: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        admit_network(&conn, "default", 1).unwrap();
        let e = admit_network(&conn, "default", 2).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::QuotaExceeded, "{}", e.0.message);
    }

    #[test]
    fn disk_limits_count_against_the_disk_quota() {
        let (_t, db) = db();
        let conn = db.lock();
        let q = Quota {
            disk: Some(100 << 20),
            ..Default::default()
        };
        assert!(set(&conn, "default", &q).unwrap());
        let c = |d: u64| ContainerCreate {
            image: Some("bb:1".into()),
            limits: Limits {
                disk: Some(d),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = admit_container(&conn, "default", &ContainerCreate::default(), None).unwrap_err();
        assert_eq!(e.0.field.as_deref(), Some("limits.disk"));
        admit_container(&conn, "default", &c(64 << 20), None).unwrap();
        let cfg = serde_json::json!({"limits": {"disk": 64u64 << 20}}).to_string();
        conn.execute(
            "INSERT INTO containers (id, tenant_id, name, state, config, restart_policy, created_at)
             VALUES ('d', 'default', 'd', 'created', ?1, 'no', 'now')",
            params![cfg],
        )
        .unwrap();
        assert_eq!(usage(&conn, "default").unwrap().disk, 64 << 20);
        let e = admit_container(&conn, "default", &c(64 << 20), None).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::QuotaExceeded, "{}", e.0.message);
        assert!(e.0.message.contains("disk"), "{}", e.0.message);
        admit_container(&conn, "default", &c(32 << 20), None).unwrap();
    }

    #[test]
    fn quotas_are_checked() {
        let bad = Quota {
            memory: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(
            check(&bad, "quota.").unwrap_err().0.field.as_deref(),
            Some("quota.memory")
        );
        let bad = Quota {
            cpus: Some(f64::NAN),
            ..Default::default()
        };
        assert_eq!(
            check(&bad, "").unwrap_err().0.field.as_deref(),
            Some("cpus")
        );
    }
}
