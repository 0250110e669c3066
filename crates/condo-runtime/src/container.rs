//! Opening an existing container from its state dir.

use std::path::Path;

use crate::error::{Error, Result};
use crate::spec::Spec;
use crate::state::{Saved, StateDir, Status};

/// A container found in the runtime root.
pub struct Container {
    /// Its state dir.
    pub dir: StateDir,
    /// What was saved at create.
    pub saved: Saved,
}

impl Container {
    /// Loads the container `id` under `root`.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let dir = StateDir::new(root, id)?;
        let saved = dir.load()?;
        Ok(Container { dir, saved })
    }

    /// Its current status.
    pub fn status(&self) -> Status {
        self.saved.status(&self.dir)
    }

    /// Its cgroup.
    pub fn cgroup(&self) -> condo_cgroups::Cgroup {
        condo_cgroups::Cgroup::from_saved(self.saved.cgroup.clone())
    }

    /// The config it was created from.
    pub fn spec(&self) -> Result<Spec> {
        let raw = std::fs::read(self.dir.file(crate::state::CONFIG_FILE)).map_err(|e| {
            Error::Other(format!(
                "container \"{}\": cannot read its config: {e}",
                self.saved.id
            ))
        })?;
        crate::create::parse_spec(&raw)
    }

    /// An error saying the status forbids `what`.
    pub fn wrong_status(&self, status: Status, reason: &str) -> Error {
        Error::WrongStatus {
            id: self.saved.id.clone(),
            status: status.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The state document as JSON.
    pub fn state_json(&self, status: Status) -> Vec<u8> {
        serde_json::to_vec(&self.saved.state(status)).unwrap_or_default()
    }
}

/// Every container under `root`, sorted by id (unreadable entries are skipped).
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::Other(format!("cannot read {}: {e}", root.display()))),
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(c) = Container::load(root, &name) {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.saved.id.cmp(&b.saved.id));
    Ok(out)
}
