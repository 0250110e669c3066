//! `kill`: send a signal to a container.

use anyhow::{bail, Result};

use crate::args::{bool_, parse};
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, &[bool_("all", Some('a'))], false)?;
    let (id, sig) = match p.pos.as_slice() {
        [id] => (id.clone(), "SIGTERM".to_string()),
        [id, s] => (id.clone(), s.clone()),
        [] => bail!("\"kill\" requires a container id"),
        _ => bail!("\"kill\" takes a container id and an optional signal"),
    };
    let sig = condo_runtime::kill::parse_signal(&sig)?;
    condo_runtime::kill::kill(&g.root, &id, sig, p.has("all"))?;
    Ok(0)
}
