//! `delete`: remove a stopped container (`--force` stops it first).

use anyhow::Result;

use crate::args::{bool_, parse};
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, &[bool_("force", Some('f'))], false)?;
    let id = crate::one_id(&p.pos, "delete")?;
    for w in condo_runtime::delete::delete(&g.root, &id, p.has("force"))? {
        crate::log::warn(&w);
    }
    Ok(0)
}
