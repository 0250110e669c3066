//! Formatting for people: tables, sizes, ages.

use crate::Format;
use std::io::Write;

/// Writes to standard output; see `outln!`.
pub fn write_out(args: std::fmt::Arguments) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            stdout_gone();
        }
        eprintln!("condo: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Passes a write to standard output through, ending the program as [`stdout_gone`] does when
/// the reader has gone.
pub fn to_stdout<T>(r: std::io::Result<T>) -> std::io::Result<T> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => stdout_gone(),
        r => r,
    }
}

/// Ends the program the way a pipeline expects when the reader of its output has gone: no
/// message, and the status a shell reports for a command killed by SIGPIPE.
pub fn stdout_gone() -> ! {
    std::process::exit(128 + 13)
}

/// Prints a listing as the API's JSON, as one key a line (`quiet`), or as a table.
pub fn listing<T: serde::Serialize>(
    list: &[T],
    output: Format,
    quiet: bool,
    key: impl Fn(&T) -> String,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<i32> {
    if output == Format::Json {
        outln!("{}", serde_json::to_string_pretty(list)?);
    } else if quiet {
        list.iter().for_each(|x| outln!("{}", key(x)));
    } else {
        table(header, &list.iter().map(row).collect::<Vec<_>>());
    }
    Ok(0)
}

/// Prints rows as aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        outln!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Parses a size: bytes, or a number with k, m, g or t (powers of 1024; a trailing b is allowed).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("\"{s}\" is not a size (like 512m or 2g)"))?;
    if n.is_nan() || n < 0.0 {
        return Err(format!("\"{s}\" is not a size"));
    }
    Ok((n * mult as f64) as u64)
}

/// A size for people (KiB, MiB, GiB).
pub fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

/// How long ago an RFC 3339 UTC time was, roughly ("3 minutes ago").
pub fn ago(t: &str) -> String {
    match epoch_secs(t) {
        Some(then) => since(then),
        None => t.to_string(),
    }
}

/// How long ago a time in seconds since the epoch was, roughly.
pub fn ago_secs(t: u64) -> String {
    since(t.min(i64::MAX as u64) as i64)
}

fn since(then: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let d = (now - then).max(0);
    match d {
        0..=59 => format!("{d} seconds ago"),
        60..=3599 => format!("{} minutes ago", d / 60),
        3600..=86399 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}

fn epoch_secs(t: &str) -> Option<i64> {
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut h = time.get(..8)?.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("lots").is_err());
        assert_eq!(human(1536), "1.5KiB");
        assert_eq!(epoch_secs("1970-01-02T00:00:01.5Z"), Some(86401));
    }
}
