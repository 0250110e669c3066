//! `start`: let a created container's init execute the user program.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use crate::container::Container;
use crate::error::{Error, IoContext, Result};
use crate::state::{Status, EXEC_SOCKET};

/// Starts the container `id`; returns warnings from poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<Vec<String>> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if status != Status::Created {
        return Err(c.wrong_status(status, "only a created container can be started"));
    }
    let d = crate::fsutil::open_root(&c.dir.path)
        .ctx(|| format!("cannot open {}", c.dir.path.display()))?;
    let sock = crate::fsutil::fd_path(d.as_fd()).join(EXEC_SOCKET);
    let mut s = std::os::unix::net::UnixStream::connect(&sock)
        .map_err(|e| Error::Other(format!("container \"{id}\": its init is gone ({e})")))?;
    let mut msg = String::new();
    let _ = s.read_to_string(&mut msg);
    let _ = std::fs::remove_file(c.dir.file(EXEC_SOCKET));
    if !msg.is_empty() {
        return Err(Error::Init(msg));
    }
    let spec = c.spec()?;
    let warnings = match spec.hooks.as_ref() {
        Some(h) if !h.poststart.is_empty() => {
            crate::hooks::run_all("poststart", &h.poststart, &c.state_json(Status::Running))?;
            Vec::new()
        }
        _ => Vec::new(),
    };
    Ok(warnings)
}
