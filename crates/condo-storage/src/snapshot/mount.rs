//! Mount descriptions returned by snapshotters, and the helpers that perform them.

use rustix::mount::{self as rm, MountFlags, UnmountFlags};
use std::io;
use std::path::{Path, PathBuf};

/// One mount to perform, like a line of `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Filesystem type: "overlay" or "bind".
    pub kind: String,
    /// The source (a directory for bind, "overlay" for overlay).
    pub source: PathBuf,
    /// Mount options: "ro", "rbind", "lowerdir=…", "upperdir=…", "workdir=…".
    pub options: Vec<String>,
}

impl Mount {
    /// A bind mount of `dir`, read-only if `ro`.
    pub fn bind(dir: PathBuf, ro: bool) -> Self {
        let mut options = vec!["rbind".to_string()];
        options.push(if ro { "ro" } else { "rw" }.into());
        Self {
            kind: "bind".into(),
            source: dir,
            options,
        }
    }

    /// Whether the options ask for read-only.
    pub fn readonly(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// Performs this mount on `target`.
    pub fn mount(&self, target: &Path) -> io::Result<()> {
        match self.kind.as_str() {
            "bind" => {
                rm::mount_bind_recursive(&self.source, target)?;
                if self.readonly() {
                    let r = rm::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "");
                    if let Err(e) = r {
                        let _ = rm::unmount(target, UnmountFlags::DETACH);
                        return Err(e.into());
                    }
                }
                Ok(())
            }
            "overlay" => {
                let mut flags = MountFlags::empty();
                let data: Vec<&str> = self
                    .options
                    .iter()
                    .map(String::as_str)
                    .filter(|o| {
                        if *o == "ro" {
                            flags |= MountFlags::RDONLY;
                        }
                        *o != "ro" && *o != "rw"
                    })
                    .collect();
                let data = std::ffi::CString::new(data.join(",")).map_err(io::Error::other)?;
                rm::mount("overlay", target, "overlay", flags, Some(data.as_c_str()))
                    .map_err(Into::into)
            }
            k => Err(io::Error::other(format!("unknown mount type {k:?}"))),
        }
    }
}

/// Performs every mount on `target` (normally one); undoes them on failure.
pub fn mount_all(mounts: &[Mount], target: &Path) -> io::Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = m.mount(target) {
            for _ in 0..i {
                let _ = unmount(target);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts `target` (detaching if it is busy).
pub fn unmount(target: &Path) -> io::Result<()> {
    match rm::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            rm::unmount(target, UnmountFlags::DETACH).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}
