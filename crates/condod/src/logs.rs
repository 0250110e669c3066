//! Reading the logs the monitor writes: tail, since, and follow across rotations.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use condo_api::LogLine;
use tokio::sync::mpsc;

/// The current log file in a container's directory.
pub const LOG_FILE: &str = "container.log";

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (or seconds since the epoch) to nanoseconds.
pub fn parse_time(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000_000);
    }
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let nanos: u64 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<9}").parse().ok()?
    };
    // Days from the civil date (proleptic Gregorian), inverse of the runtime's formatter.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs).ok().map(|s| s * 1_000_000_000 + nanos)
}

/// The log files of a container directory, oldest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix("container.log.")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(dir.join(LOG_FILE));
    out
}

fn decode(line: &str, since: Option<u64>) -> Option<LogLine> {
    let l: LogLine = serde_json::from_str(line).ok()?;
    match since {
        Some(s) if parse_time(&l.time).unwrap_or(0) < s => None,
        _ => Some(l),
    }
}

/// Options of a log read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only the last N lines.
    pub tail: Option<u64>,
    /// Only lines at or after this time (ns).
    pub since: Option<u64>,
    /// Keep reading until `done` says the container has stopped.
    pub follow: bool,
}

/// Sends the matching lines to `tx`; with `follow`, keeps sending new ones until `done()` is
/// true and nothing more comes, or the receiver goes away. Runs on a blocking thread.
pub fn read(dir: &Path, q: &Query, done: impl Fn() -> bool, tx: mpsc::Sender<LogLine>) {
    let mut lines: Vec<LogLine> = Vec::new();
    let mut current: Option<(File, u64)> = None;
    for p in files(dir) {
        let Ok(mut f) = File::open(&p) else { continue };
        let mut text = String::new();
        let _ = f.read_to_string(&mut text);
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        lines.extend(text[..complete].lines().filter_map(|l| decode(l, q.since)));
        if p.ends_with(LOG_FILE) {
            let _ = f.seek(SeekFrom::Start(complete as u64));
            current = Some((f, complete as u64));
        }
    }
    let skip = q.tail.map_or(0, |t| lines.len().saturating_sub(t as usize));
    for l in lines.into_iter().skip(skip) {
        if tx.blocking_send(l).is_err() {
            return;
        }
    }
    if !q.follow {
        return;
    }
    let path = dir.join(LOG_FILE);
    let mut reader = current.map(|(f, _)| BufReader::new(f));
    let mut partial = String::new();
    // Poll every millisecond at first (short-lived containers end within milliseconds and
    // `condo run` waits here for their end), slower once the container has been quiet a while.
    let fast = Duration::from_millis(1);
    let mut nap = fast;
    let fast_until = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        let stopped = done();
        let mut got = false;
        if let Some(r) = reader.as_mut() {
            loop {
                let mut s = String::new();
                match r.read_line(&mut s) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                partial.push_str(&s);
                if !partial.ends_with('\n') {
                    continue;
                }
                got = true;
                if let Some(l) = decode(partial.trim_end(), q.since) {
                    if tx.blocking_send(l).is_err() {
                        return;
                    }
                }
                partial.clear();
            }
        }
        // After a rotation the name points at a new file: switch once the old one is read.
        let rotated = match (reader.as_ref(), std::fs::metadata(&path)) {
            (Some(r), Ok(m)) => r
                .get_ref()
                .metadata()
                .map(|o| o.ino() != m.ino())
                .unwrap_or(true),
            (None, Ok(_)) => true,
            _ => false,
        };
        if rotated {
            reader = File::open(&path).ok().map(BufReader::new);
            partial.clear();
            continue;
        }
        if stopped && !got {
            return;
        }
        if tx.is_closed() {
            return;
        }
        nap = if got || std::time::Instant::now() < fast_until {
            fast
        } else {
            (nap * 2).min(Duration::from_millis(100))
        };
        std::thread::sleep(nap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        let t = condo_runtime::state::rfc3339(1_795_000_000, 5);
        assert_eq!(parse_time(&t), Some(1_795_000_000 * 1_000_000_000 + 5));
        assert_eq!(
            parse_time("2000-02-29T00:00:00.5Z"),
            Some(951_782_400 * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(parse_time("12"), Some(12_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
