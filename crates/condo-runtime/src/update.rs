//! `update`: change a container's resource limits while it runs.

use std::path::Path;

use crate::container::Container;
use crate::error::Result;
use crate::state::Status;

/// Applies `r` to the container's cgroup; only the fields present change.
pub fn update(root: &Path, id: &str, r: &condo_cgroups::Resources) -> Result<()> {
    let c = Container::load(root, id)?;
    let s = c.status();
    if s == Status::Stopped {
        return Err(c.wrong_status(s, "cannot update a stopped container"));
    }
    c.cgroup().update(r)?;
    Ok(())
}
