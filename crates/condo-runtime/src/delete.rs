//! `delete`: remove a stopped container (or, forced, stop it first).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::container::Container;
use crate::error::{Error, Result};
use crate::state::{StateDir, Status};

/// Deletes `id`; returns warnings from poststop hooks.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<Vec<String>> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(Error::NotFound(_)) if force => {
            // A half-created container may have a dir without state: remove what is there.
            let d = StateDir::new(root, id)?;
            d.remove()?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let status = c.status();
    let cg = c.cgroup();
    if status != Status::Stopped {
        if !force {
            return Err(c.wrong_status(status, "delete needs a stopped container (or --force)"));
        }
        stop_all(&c, &cg)?;
    } else if !c.saved.own_pid_ns {
        // Without a pid namespace, processes may outlive the init.
        let _ = cg.kill_all(libc::SIGKILL);
    }
    destroy(&c, &cg)
}

/// Kills every process of the container and waits until the init is gone.
pub fn stop_all(c: &Container, cg: &condo_cgroups::Cgroup) -> Result<()> {
    let _ = cg.thaw();
    let _ = condo_sys::process::kill(c.saved.pid, libc::SIGKILL);
    cg.kill_all(libc::SIGKILL)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.saved.alive() {
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "container \"{}\": init did not die",
                c.saved.id
            )));
        }
        // A zombie still counts as alive until reaped; try to reap it if it is ours.
        let _ = condo_sys::process::try_wait(c.saved.pid);
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Removes the cgroup and state dir and runs poststop hooks.
pub fn destroy(c: &Container, cg: &condo_cgroups::Cgroup) -> Result<Vec<String>> {
    let spec = c.spec().ok();
    cg.remove()?;
    let mut warnings = Vec::new();
    if let Some(h) = spec.as_ref().and_then(|s| s.hooks.as_ref()) {
        warnings =
            crate::hooks::run_all_lenient("poststop", &h.poststop, &c.state_json(Status::Stopped));
    }
    c.dir.remove()?;
    Ok(warnings)
}
