//! Network namespaces pinned to a file (a bind mount of the nsfs file), so that a container's
//! runtime can join one by path while the namespace is set up from outside. The namespace
//! lives while the file is mounted or a process is in it; unpinning drops the mount, so it
//! ends with the container's last process and takes the container's veth with it.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

fn netns_err(path: &Path, source: io::Error) -> Error {
    Error::Netns {
        what: path.display().to_string(),
        source,
    }
}

/// Creates a new network namespace (loopback still down) pinned at `path`, a file that must
/// not exist yet. Nothing is left behind on failure.
pub fn create_pinned(path: &Path) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| netns_err(path, e))?;
    let target = path.to_path_buf();
    let res = std::thread::spawn(move || -> io::Result<()> {
        condo_sys::netns::unshare_net()?;
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")));
    if let Err(e) = res {
        let _ = std::fs::remove_file(path);
        return Err(netns_err(path, e));
    }
    Ok(())
}

/// Unpins the namespace at `path` and removes the file; a missing file is not an error.
pub fn remove_pinned(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(netns_err(path, e.into())),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(netns_err(path, e)),
        _ => Ok(()),
    }
}
