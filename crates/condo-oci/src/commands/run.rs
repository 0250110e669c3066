//! `run`: create and start; in the foreground, wait and delete.

use anyhow::Result;

use crate::args::parse;
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, super::create::FLAGS, false)?;
    let opts = super::create::options(g, &p, "run")?;
    if !p.has("detach") && !p.has("no-subreaper") {
        // Orphans of the container are ours to reap while we wait for it.
        let _ = condo_runtime::run::become_subreaper();
    }
    Ok(condo_runtime::run::run_reporting(
        &opts,
        p.has("detach"),
        &mut |w| crate::log::warn(w),
    )?)
}
