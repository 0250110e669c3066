//! The container's log: JSON lines in size-capped files that rotate.
//!
//! Each line is `{"time":…,"stream":"stdout"|"stderr","line":…}`. When the current file would
//! pass its cap it becomes `container.log.1` (older ones shift up, the oldest is dropped).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the current log file in the monitor's directory.
pub const LOG_FILE: &str = "container.log";

/// Longest line kept whole; longer output is cut into several lines.
const MAX_LINE: usize = 16 * 1024;

/// A rotating log writer.
pub struct Log {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
    keep: u32,
}

impl Log {
    /// Opens (appends to) the log in `dir`.
    pub fn open(dir: &Path, max: u64, keep: u32) -> std::io::Result<Log> {
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Log {
            path,
            file: Some(file),
            size,
            max: max.max(4096),
            keep,
        })
    }

    /// Writes one line of `stream`.
    pub fn line(&mut self, stream: &str, text: &[u8]) {
        let mut rec = format!(
            "{{\"time\":\"{}\",\"stream\":\"{stream}\",\"line\":\"",
            condo_runtime::state::now_rfc3339()
        );
        quote_into(&String::from_utf8_lossy(text), &mut rec);
        rec.push_str("\"}\n");
        if self.size + rec.len() as u64 > self.max {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(rec.as_bytes()).is_ok() {
                self.size += rec.len() as u64;
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(name(n), name(n + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.size = 0;
    }
}

/// Appends `text` escaped as the inside of a JSON string (here rather than through a JSON
/// library: this runs in the small watcher).
fn quote_into(text: &str, out: &mut String) {
    use std::fmt::Write as _;
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Splits a byte stream into lines for one stream of the log.
pub struct LineBuf {
    stream: &'static str,
    buf: Vec<u8>,
}

impl LineBuf {
    /// A buffer for `stream` (`stdout` or `stderr`).
    pub fn new(stream: &'static str) -> LineBuf {
        LineBuf {
            stream,
            buf: Vec::new(),
        }
    }

    /// Adds bytes; writes every complete line.
    pub fn push(&mut self, data: &[u8], log: &mut Log) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(i) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + i;
            let line = self.buf[start..end]
                .strip_suffix(b"\r")
                .unwrap_or(&self.buf[start..end]);
            log.line(self.stream, line);
            start = end + 1;
        }
        self.buf.drain(..start);
        while self.buf.len() >= MAX_LINE {
            let rest = self.buf.split_off(MAX_LINE);
            log.line(self.stream, &self.buf);
            self.buf = rest;
        }
    }

    /// Writes what is left as a last line.
    pub fn flush(&mut self, log: &mut Log) {
        if !self.buf.is_empty() {
            log.line(self.stream, &self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_rotates() {
        let d = tempfile::tempdir().unwrap();
        let mut log = Log::open(d.path(), 4096, 2).unwrap();
        let mut b = LineBuf::new("stdout");
        b.push(b"one\ntw", &mut log);
        b.push(b"o\nthree", &mut log);
        b.flush(&mut log);
        let text = std::fs::read_to_string(d.path().join(LOG_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<&str> = lines.iter().map(|v| v["line"].as_str().unwrap()).collect();
        assert_eq!(got, ["one", "two", "three"]);
        for _ in 0..200 {
            b.push(
                b"a line long enough to fill the small cap quickly\n",
                &mut log,
            );
        }
        assert!(d.path().join("container.log.1").exists());
        assert!(d.path().join("container.log.2").exists());
        assert!(!d.path().join("container.log.3").exists());
        let total: u64 = ["container.log", "container.log.1", "container.log.2"]
            .iter()
            .map(|n| std::fs::metadata(d.path().join(n)).unwrap().len())
            .sum();
        assert!(total <= 3 * 4096);
    }

    #[test]
    fn escapes_like_json() {
        for text in ["plain", "q\"b\\s\ttab", "ctl\u{1}\u{1f}\u{7f} é ✓"] {
            let mut q = String::from("\"");
            quote_into(text, &mut q);
            q.push('"');
            let back: String = serde_json::from_str(&q).unwrap();
            assert_eq!(back, text, "{q}");
        }
    }
}
