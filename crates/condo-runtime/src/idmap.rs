//! User-namespace id maps, time-namespace offsets and idmapped mounts.

use std::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::spec::{IdMapping, Linux, Spec};

fn map_text(m: &[IdMapping]) -> String {
    let mut s = String::new();
    for e in m {
        let _ = writeln!(s, "{} {} {}", e.container_id, e.host_id, e.size);
    }
    s
}

/// Writes the container's uid and gid maps for the process `pid`.
pub fn write_maps(pid: i32, linux: &Linux) -> Result<()> {
    std::fs::write(
        format!("/proc/{pid}/uid_map"),
        map_text(&linux.uid_mappings),
    )
    .ctx(|| "linux.uidMappings: cannot write uid_map".into())?;
    std::fs::write(
        format!("/proc/{pid}/gid_map"),
        map_text(&linux.gid_mappings),
    )
    .ctx(|| "linux.gidMappings: cannot write gid_map".into())?;
    Ok(())
}

/// Writes the time namespace offsets of `/proc/<who>/timens_offsets`.
pub fn write_time_offsets(who: &str, linux: &Linux) -> Result<()> {
    if linux.time_offsets.is_empty() {
        return Ok(());
    }
    let mut s = String::new();
    for (clock, off) in &linux.time_offsets {
        let _ = writeln!(s, "{clock} {} {}", off.secs, off.nanosecs);
    }
    std::fs::write(format!("/proc/{who}/timens_offsets"), s)
        .ctx(|| "linux.timeOffsets: cannot write timens_offsets".into())
}

/// A user namespace holding `uid`/`gid` maps, kept open by its fd (for idmapped mounts).
///
/// Safe to call from many threads at once: the helper child waits to be killed rather than for
/// the end of a pipe, whose write end a child forked by another thread meanwhile would hold.
pub fn userns_with(uid: &[IdMapping], gid: &[IdMapping]) -> Result<OwnedFd> {
    let forked = condo_sys::process::clone3(&condo_sys::process::CloneArgs {
        flags: libc::CLONE_NEWUSER as u64,
        pidfd: false,
        exit_signal: libc::SIGCHLD,
        cgroup: None,
    })
    .ctx(|| "cannot create a user namespace for an idmapped mount".into())?;
    let pid = match forked {
        condo_sys::process::Forked::Child => {
            // Also gone if the caller dies before killing it.
            let _ = condo_sys::process::set_parent_death_signal(libc::SIGKILL);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        condo_sys::process::Forked::Parent { pid, .. } => pid,
    };
    let result = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uid))
            .ctx(|| "cannot write an idmapped mount's uid map".into())?;
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .ctx(|| "cannot write setgroups".into())?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gid))
            .ctx(|| "cannot write an idmapped mount's gid map".into())?;
        rustix::fs::open(
            format!("/proc/{pid}/ns/user"),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .ctx(|| "cannot open the user namespace".into())
    })();
    let _ = condo_sys::process::kill(pid, libc::SIGKILL);
    let _ = condo_sys::process::waitpid(pid);
    result
}

/// Opens a detached, idmapped copy of every mount that asks for one, by mount index.
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Vec<(usize, OwnedFd)>> {
    let linux = spec.linux();
    let mut out = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        let opts = crate::mountopts::Options::parse(&m.options);
        if opts.idmap.is_none() && m.uid_mappings.is_empty() {
            continue;
        }
        let (uid, gid) = if m.uid_mappings.is_empty() {
            (&linux.uid_mappings, &linux.gid_mappings)
        } else {
            (&m.uid_mappings, &m.gid_mappings)
        };
        if uid.is_empty() || gid.is_empty() {
            return Err(crate::error::invalid(format!(
                "mounts[{i}]: idmap needs uidMappings and gidMappings (on the mount or in linux)"
            )));
        }
        let src = m.source.as_deref().unwrap_or("");
        let src = if Path::new(src).is_absolute() {
            Path::new(src).to_path_buf()
        } else {
            bundle.join(src)
        };
        let dir = rustix::fs::open(
            &src,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("mounts[{i}].source {}", src.display()))?;
        let recursive = opts.bind == Some(true) || opts.idmap == Some(true);
        let flags = condo_sys::mount::OPEN_TREE_CLONE
            | if recursive {
                condo_sys::mount::AT_RECURSIVE
            } else {
                0
            };
        let mnt = condo_sys::mount::open_tree(dir.as_fd(), "", flags)
            .ctx(|| format!("mounts[{i}]: open_tree"))?;
        let ns = userns_with(uid, gid)?;
        condo_sys::mount::set_idmap(mnt.as_fd(), ns.as_fd(), recursive).map_err(|e| {
            Error::Other(format!(
                "mounts[{i}]: the filesystem of {} cannot be idmapped: {e}",
                src.display()
            ))
        })?;
        out.push((i, mnt));
    }
    Ok(out)
}
