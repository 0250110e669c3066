//! Error and debug messages, to stderr and to `--log` in text or JSON (engines read the JSON).

use std::io::Write;
use std::sync::OnceLock;

struct Sink {
    file: Option<std::path::PathBuf>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets where messages go.
pub fn init(file: Option<&str>, format: Option<&str>, debug: bool) {
    let _ = SINK.set(Sink {
        file: file.map(Into::into),
        json: format == Some("json"),
        debug,
    });
}

fn write(level: &str, msg: &str) {
    let Some(s) = SINK.get() else { return };
    let Some(path) = &s.file else { return };
    let time = condo_runtime::state::now_rfc3339();
    let line = if s.json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Reports an error on stderr and in the log.
pub fn error(msg: &str) {
    write("error", msg);
    eprintln!("condo-oci: {msg}");
}

/// Reports a warning.
pub fn warn(msg: &str) {
    write("warning", msg);
    eprintln!("condo-oci: warning: {msg}");
}

/// Writes a debug message (to the log, or stderr without one) when `--debug` is on.
pub fn debug(msg: &str) {
    match SINK.get() {
        Some(s) if s.debug && s.file.is_some() => write("debug", msg),
        Some(s) if s.debug => eprintln!("condo-oci: debug: {msg}"),
        _ => {}
    }
}
