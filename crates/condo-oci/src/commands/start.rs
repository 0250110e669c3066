//! `start`: run the program of a created container.

use anyhow::Result;

use crate::args::parse;
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, &[], false)?;
    let id = crate::one_id(&p.pos, "start")?;
    for w in condo_runtime::start::start(&g.root, &id)? {
        crate::log::warn(&w);
    }
    Ok(0)
}
