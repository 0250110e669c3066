//! `state`: the state document of a container.

use anyhow::Result;
use condo_runtime::container::Container;

use crate::args::parse;
use crate::Global;

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, &[], false)?;
    let id = crate::one_id(&p.pos, "state")?;
    let c = Container::load(&g.root, &id)?;
    let st = c.saved.state(c.status());
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(0)
}
