//! `pause` and `resume`: freeze and thaw every process of a container.

use std::path::Path;

use crate::container::Container;
use crate::error::Result;
use crate::state::Status;

/// Freezes a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let s = c.status();
    if s != Status::Running && s != Status::Created {
        return Err(c.wrong_status(s, "only a running container can be paused"));
    }
    c.cgroup().freeze()?;
    Ok(())
}

/// Thaws a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let s = c.status();
    if s != Status::Paused {
        return Err(c.wrong_status(s, "only a paused container can be resumed"));
    }
    c.cgroup().thaw()?;
    Ok(())
}
