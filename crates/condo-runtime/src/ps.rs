//! `ps`: the processes of a container.

use std::path::Path;

use crate::container::Container;
use crate::error::Result;

/// Host pids of every process in the container's cgroup.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    let mut p = c.cgroup().pids()?;
    p.sort_unstable();
    Ok(p)
}
