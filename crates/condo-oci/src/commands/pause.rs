//! `pause` and `resume`.

use anyhow::Result;

use crate::args::parse;
use crate::Global;

/// Runs `pause` (`freeze`) or `resume`.
pub fn main(g: &Global, args: &[String], freeze: bool) -> Result<i32> {
    let p = parse(args, &[], false)?;
    let id = crate::one_id(&p.pos, if freeze { "pause" } else { "resume" })?;
    if freeze {
        condo_runtime::pause::pause(&g.root, &id)?;
    } else {
        condo_runtime::pause::resume(&g.root, &id)?;
    }
    Ok(0)
}
