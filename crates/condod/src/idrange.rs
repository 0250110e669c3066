//! Id ranges of user namespaces: each isolated container owns 65536 host uids and gids of its
//! own, recorded in the database so that no two containers ever hold the same range, across
//! restarts of the daemon too.
//!
//! Ranges are slots above [`FIRST`]: slot `n` maps ids 0–65535 inside to
//! `FIRST + n * 65536` onwards outside. A range is taken before a container's instance is made
//! and given back when the container is deleted (or its creation fails); at start, ranges whose
//! container never came to be are given back.

use std::path::Path;

use condo_api::ContainerCreate;
use rusqlite::{params, Connection, OptionalExtension};

/// Ids in one container's range.
pub const SIZE: u32 = 65536;
/// The host id of slot 0's root: far above the ids of host users and of the usual
/// `/etc/subuid` ranges.
pub const FIRST: u32 = 1 << 30;
/// Slots that fit below the largest valid id (`u32::MAX` is `-1`, never an id).
pub const SLOTS: u32 = ((u32::MAX - FIRST) / SIZE) - 1;

/// One container's range: host ids `base .. base + SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The host id of the container's root.
    pub base: u32,
}

impl IdRange {
    fn of_slot(slot: u32) -> IdRange {
        IdRange {
            base: FIRST + slot * SIZE,
        }
    }
}

/// Whether `c` runs in a user namespace of its own (the default).
pub fn wants_range(c: &ContainerCreate) -> bool {
    !c.privileged && c.userns.as_deref() != Some("host")
}

/// The range of container `id`, if it holds one.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<IdRange>> {
    conn.query_row(
        "SELECT slot FROM id_ranges WHERE container_id = ?1",
        [id],
        |r| r.get::<_, u32>(0),
    )
    .optional()
    .map(|s| s.map(IdRange::of_slot))
}

/// Takes the lowest free range for container `id` (or returns the one it holds). Ranges that
/// overlap an `/etc/subuid` or `/etc/subgid` entry are skipped: those ids belong to host users.
pub fn allocate(conn: &Connection, id: &str) -> Result<IdRange, String> {
    if let Some(r) = get(conn, id).map_err(|e| e.to_string())? {
        return Ok(r);
    }
    let reserved = host_subordinate_ranges();
    let used: Vec<u32> = {
        let mut st = conn
            .prepare_cached("SELECT slot FROM id_ranges ORDER BY slot")
            .map_err(|e| e.to_string())?;
        let rows = st
            .query_map([], |r| r.get::<_, u32>(0))
            .map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| e.to_string())?
    };
    let slot = free_slot(&used, &reserved)
        .ok_or_else(|| format!("no free id range is left (all {SLOTS} are in use)"))?;
    // The primary key refuses a slot taken twice, whatever happens around this call.
    conn.execute(
        "INSERT INTO id_ranges (slot, container_id) VALUES (?1, ?2)",
        params![slot, id],
    )
    .map_err(|e| e.to_string())?;
    Ok(IdRange::of_slot(slot))
}

/// Gives back the range of container `id`.
pub fn release(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM id_ranges WHERE container_id = ?1", [id])
        .map(|_| ())
}

/// At start: gives back ranges held for containers that have no row (a crash during a
/// create). Returns how many.
pub fn release_orphans(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM id_ranges WHERE container_id NOT IN (SELECT id FROM containers)",
        [],
    )
}

/// The lowest slot neither in `used` (sorted) nor overlapping a `reserved` id interval.
fn free_slot(used: &[u32], reserved: &[(u64, u64)]) -> Option<u32> {
    let mut taken = used.iter().peekable();
    for slot in 0..SLOTS {
        while taken.peek().is_some_and(|&&u| u < slot) {
            taken.next();
        }
        if taken.peek() == Some(&&slot) {
            continue;
        }
        let lo = FIRST as u64 + slot as u64 * SIZE as u64;
        let hi = lo + SIZE as u64;
        if reserved.iter().any(|&(a, b)| a < hi && lo < b) {
            continue;
        }
        return Some(slot);
    }
    None
}

/// Host id intervals `[start, end)` delegated to users in /etc/subuid and /etc/subgid.
fn host_subordinate_ranges() -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for f in ["/etc/subuid", "/etc/subgid"] {
        out.extend(parse_subordinate(Path::new(f)));
    }
    out
}

fn parse_subordinate(path: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.trim().split(':');
            let (_, start, count) = (it.next()?, it.next()?, it.next()?);
            let (s, c): (u64, u64) = (start.parse().ok()?, count.parse().ok()?);
            Some((s, s.saturating_add(c)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE containers (id TEXT PRIMARY KEY);
             CREATE TABLE id_ranges (slot INTEGER PRIMARY KEY, container_id TEXT NOT NULL UNIQUE);",
        )
        .unwrap();
        c
    }

    #[test]
    fn ranges_are_distinct_reused_after_release_and_never_shared() {
        let c = db();
        let a = allocate(&c, "a").unwrap();
        let b = allocate(&c, "b").unwrap();
        assert_ne!(a, b);
        assert!(a.base >= FIRST && b.base >= FIRST);
        assert!(a.base.abs_diff(b.base) >= SIZE, "{a:?} and {b:?} overlap");
        assert_eq!(allocate(&c, "a").unwrap(), a, "a container keeps its range");
        release(&c, "a").unwrap();
        let d = allocate(&c, "d").unwrap();
        assert_eq!(d, a, "the lowest free range is handed out again");
        // A slot taken twice is refused by the table itself.
        let slot = (b.base - FIRST) / SIZE;
        assert!(c
            .execute(
                "INSERT INTO id_ranges (slot, container_id) VALUES (?1, 'x')",
                [slot]
            )
            .is_err());
        c.execute("INSERT INTO containers (id) VALUES ('b')", [])
            .unwrap();
        assert_eq!(release_orphans(&c).unwrap(), 1, "only d has no row");
        assert_eq!(get(&c, "b").unwrap(), Some(b));
        assert_eq!(get(&c, "d").unwrap(), None);
    }

    #[test]
    fn slots_skip_used_ones_and_host_subordinate_ids() {
        assert_eq!(free_slot(&[], &[]), Some(0));
        assert_eq!(free_slot(&[0, 1, 3], &[]), Some(2));
        let first = FIRST as u64;
        // Slot 0 overlaps by one id, slot 1 lies inside: 2 is the first free.
        let reserved = [(first + SIZE as u64 - 1, first + 2 * SIZE as u64)];
        assert_eq!(free_slot(&[], &reserved), Some(2));
        // The last slot's ids all stay below u32::MAX.
        let last = FIRST as u64 + (SLOTS as u64 - 1) * SIZE as u64 + SIZE as u64 - 1;
        assert!(last < u32::MAX as u64);
    }

    #[test]
    fn subordinate_files_are_read_leniently() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("subuid");
        std::fs::write(
            &p,
            "alice:100000:65536\nbad line\nbob:x:1\n\ncarol:200000:10\n",
        )
        .unwrap();
        assert_eq!(
            parse_subordinate(&p),
            vec![(100000, 165536), (200000, 200010)]
        );
    }
}
