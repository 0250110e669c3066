//! `ps`: processes of a container, as pids (json) or through ps(1) (table).

use anyhow::{bail, Context, Result};

use crate::args::{parse, val};
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, &[val("format", Some('f'))], true)?;
    let Some(id) = p.pos.first() else {
        bail!("\"ps\" requires a container id")
    };
    let pids = condo_runtime::ps::pids(&g.root, id)?;
    match p.get("format").unwrap_or("table") {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let ps_args: Vec<String> = if p.pos.len() > 1 {
                p.pos[1..].to_vec()
            } else {
                vec!["-ef".into()]
            };
            let out = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .context("cannot run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    ps_args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let Some(header) = lines.next() else {
                return Ok(0);
            };
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for l in lines {
                if l.split_whitespace()
                    .nth(col)
                    .and_then(|v| v.parse::<i32>().ok())
                    .is_some_and(|pid| pids.contains(&pid))
                {
                    println!("{l}");
                }
            }
        }
        f => bail!("invalid format \"{f}\": use table or json"),
    }
    Ok(0)
}
