//! `list`: every container under the root.

use anyhow::{bail, Result};
use condo_runtime::container;

use crate::args::{bool_, parse, val};
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(
        args,
        &[val("format", Some('f')), bool_("quiet", Some('q'))],
        false,
    )?;
    let all = container::list(&g.root)?;
    if p.has("quiet") {
        for c in &all {
            println!("{}", c.saved.id);
        }
        return Ok(0);
    }
    match p.get("format").unwrap_or("table") {
        "json" => {
            let states: Vec<_> = all.iter().map(|c| c.saved.state(c.status())).collect();
            println!("{}", serde_json::to_string(&states)?);
        }
        "table" => {
            let rows: Vec<[String; 6]> = all
                .iter()
                .map(|c| {
                    let st = c.saved.state(c.status());
                    [
                        st.id,
                        st.pid.to_string(),
                        st.status.to_string(),
                        st.bundle,
                        st.created,
                        st.owner,
                    ]
                })
                .collect();
            let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut w = [0usize; 6];
            for r in std::iter::once(&head).chain(rows.iter()) {
                for (i, c) in r.iter().enumerate() {
                    w[i] = w[i].max(c.len());
                }
            }
            for r in std::iter::once(&head).chain(rows.iter()) {
                let line: Vec<String> = r
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c:<width$}", width = w[i]))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
        f => bail!("invalid format \"{f}\": use table or json"),
    }
    Ok(0)
}
