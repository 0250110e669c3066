//! `update`: change resource limits of a running container.

use std::io::Read;

use anyhow::{bail, Context, Result};
use condo_cgroups::Resources;
use serde_json::{json, Map, Value};

use crate::args::{parse, val, Flag};
use crate::Global;

const FLAGS: &[Flag] = &[
    val("resources", Some('r')),
    val("memory", None),
    val("memory-swap", None),
    val("memory-reservation", None),
    val("kernel-memory", None),
    val("kernel-memory-tcp", None),
    val("cpu-shares", None),
    val("cpu-quota", None),
    val("cpu-period", None),
    val("cpu-burst", None),
    val("cpu-rt-period", None),
    val("cpu-rt-runtime", None),
    val("cpu-idle", None),
    val("cpuset-cpus", None),
    val("cpuset-mems", None),
    val("pids-limit", None),
    val("blkio-weight", None),
    val("l3-cache-schema", None),
    val("mem-bw-schema", None),
];

/// Parses sizes like `512m`, `1g` or plain bytes; `-1` means unlimited.
fn size(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let l = v.to_ascii_lowercase();
    let (num, mul) = match l.trim_end_matches('b').chars().last() {
        Some('k') => (&l[..l.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&l[..l.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&l[..l.trim_end_matches('b').len() - 1], 1 << 30),
        Some('t') => (&l[..l.trim_end_matches('b').len() - 1], 1 << 40),
        _ => (l.trim_end_matches('b'), 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid value {v:?} for --{flag}"))?;
    if n < 0.0 {
        bail!("invalid value {v:?} for --{flag}: negative");
    }
    Ok((n * mul as f64) as i64)
}

fn int(flag: &str, v: &str) -> Result<i64> {
    v.parse()
        .with_context(|| format!("invalid value {v:?} for --{flag}"))
}

fn put(root: &mut Map<String, Value>, section: &str, key: &str, v: Value) {
    let s = root.entry(section).or_insert_with(|| json!({}));
    if let Some(o) = s.as_object_mut() {
        o.insert(key.into(), v);
    }
}

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, FLAGS, false)?;
    let id = crate::one_id(&p.pos, "update")?;
    let mut doc: Map<String, Value> = match p.get("resources") {
        None => Map::new(),
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text =
                    std::fs::read_to_string(path).with_context(|| format!("--resources {path}"))?;
            }
            match serde_json::from_str::<Value>(&text).context("--resources: invalid JSON")? {
                Value::Object(m) => m,
                _ => bail!("--resources: expected a JSON object"),
            }
        }
    };
    for (flag, section, key) in [
        ("memory", "memory", "limit"),
        ("memory-swap", "memory", "swap"),
        ("memory-reservation", "memory", "reservation"),
        ("kernel-memory", "memory", "kernel"),
        ("kernel-memory-tcp", "memory", "kernelTCP"),
    ] {
        if let Some(v) = p.get(flag) {
            put(&mut doc, section, key, json!(size(flag, v)?));
        }
    }
    for (flag, key) in [
        ("cpu-shares", "shares"),
        ("cpu-quota", "quota"),
        ("cpu-period", "period"),
        ("cpu-burst", "burst"),
        ("cpu-rt-period", "realtimePeriod"),
        ("cpu-rt-runtime", "realtimeRuntime"),
        ("cpu-idle", "idle"),
    ] {
        if let Some(v) = p.get(flag) {
            put(&mut doc, "cpu", key, json!(int(flag, v)?));
        }
    }
    if let Some(v) = p.get("cpuset-cpus") {
        put(&mut doc, "cpu", "cpus", json!(v));
    }
    if let Some(v) = p.get("cpuset-mems") {
        put(&mut doc, "cpu", "mems", json!(v));
    }
    if let Some(v) = p.get("pids-limit") {
        put(&mut doc, "pids", "limit", json!(int("pids-limit", v)?));
    }
    if let Some(v) = p.get("blkio-weight") {
        put(
            &mut doc,
            "blockIO",
            "weight",
            json!(int("blkio-weight", v)?),
        );
    }
    if p.get("l3-cache-schema").is_some() || p.get("mem-bw-schema").is_some() {
        bail!("Intel RDT is not available on this host");
    }
    let de = Value::Object(doc);
    let r: Resources = serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow::anyhow!(
            "invalid resources: linux.resources.{}: {}",
            e.path(),
            e.inner()
        )
    })?;
    condo_runtime::update::update(&g.root, &id, &r)?;
    Ok(0)
}
