//! `events`: stats and OOM notifications of a container as JSON lines.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use condo_runtime::container::Container;
use condo_runtime::state::Status;
use serde_json::json;

use crate::args::{bool_, parse, val};
use crate::Global;

fn parse_interval(s: &str) -> Result<Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid --interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("invalid --interval {s:?}: use a duration like 5s or 500ms"),
    };
    if secs <= 0.0 {
        anyhow::bail!("invalid --interval {s:?}: must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, &[bool_("stats", None), val("interval", None)], false)?;
    let id = crate::one_id(&p.pos, "events")?;
    let c = Container::load(&g.root, &id)?;
    let cg = c.cgroup();
    let stats_event = || -> Result<String> {
        let st = cg.stats()?;
        Ok(json!({"type": "stats", "id": id, "data": st}).to_string())
    };
    if p.has("stats") {
        println!("{}", stats_event()?);
        return Ok(0);
    }
    let interval = parse_interval(p.get("interval").unwrap_or("5s"))?;
    let mut oom = cg.oom_notifier().ok();
    let mut next = Instant::now();
    let stdout = std::io::stdout();
    loop {
        if c.status() == Status::Stopped {
            return Ok(0);
        }
        if Instant::now() >= next {
            writeln!(stdout.lock(), "{}", stats_event()?)?;
            next = Instant::now() + interval;
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        match oom.as_mut() {
            Some(n) => {
                let ready = condo_sys::process::poll_readable(n.raw_fd(), wait.as_millis() as i32)
                    .unwrap_or(false);
                if ready && n.consume().unwrap_or(false) {
                    writeln!(stdout.lock(), "{}", json!({"type": "oom", "id": id}))?;
                }
            }
            None => std::thread::sleep(wait),
        }
    }
}
