//! Namespace kinds and the plan of which to create and which to join.

use std::os::fd::OwnedFd;

use crate::error::{invalid, IoContext, Result};
use crate::spec::Linux;

/// A kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Process ids.
    Pid,
    /// Network stack.
    Network,
    /// Mount table.
    Mount,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Host and domain name.
    Uts,
    /// User and group ids.
    User,
    /// cgroup root.
    Cgroup,
    /// Monotonic and boot-time clocks.
    Time,
}

impl Kind {
    /// Every kind, in the order namespaces are joined (user first).
    pub const ALL: [Kind; 8] = [
        Kind::User,
        Kind::Ipc,
        Kind::Uts,
        Kind::Network,
        Kind::Pid,
        Kind::Mount,
        Kind::Cgroup,
        Kind::Time,
    ];

    /// Parses the spec's name.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "pid" => Kind::Pid,
            "network" => Kind::Network,
            "mount" => Kind::Mount,
            "ipc" => Kind::Ipc,
            "uts" => Kind::Uts,
            "user" => Kind::User,
            "cgroup" => Kind::Cgroup,
            "time" => Kind::Time,
            _ => return None,
        })
    }

    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pid => "pid",
            Kind::Network => "network",
            Kind::Mount => "mount",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::User => "user",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }

    /// The file under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::Network => "net",
            Kind::Time => "time",
            k => k.name(),
        }
    }

    /// The `CLONE_NEW*` flag.
    pub fn flag(self) -> i32 {
        match self {
            Kind::Pid => libc::CLONE_NEWPID,
            Kind::Network => libc::CLONE_NEWNET,
            Kind::Mount => libc::CLONE_NEWNS,
            Kind::Ipc => libc::CLONE_NEWIPC,
            Kind::Uts => libc::CLONE_NEWUTS,
            Kind::User => libc::CLONE_NEWUSER,
            Kind::Cgroup => libc::CLONE_NEWCGROUP,
            Kind::Time => 0x80,
        }
    }
}

/// Which namespaces the container creates and which it joins.
#[derive(Debug, Default)]
pub struct Plan {
    /// Kinds to create.
    pub new: Vec<Kind>,
    /// Kinds to join, with the opened namespace file.
    pub join: Vec<(Kind, OwnedFd)>,
}

impl Plan {
    /// Validates `linux.namespaces` and opens every namespace file to join.
    pub fn from_spec(linux: &Linux) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut seen: Vec<Kind> = Vec::new();
        for (i, ns) in linux.namespaces.iter().enumerate() {
            let kind = Kind::parse(&ns.kind).ok_or_else(|| {
                invalid(format!(
                    "linux.namespaces[{i}].type \"{}\" is not a namespace",
                    ns.kind
                ))
            })?;
            if seen.contains(&kind) {
                return Err(invalid(format!(
                    "linux.namespaces[{i}].type \"{}\" appears twice",
                    ns.kind
                )));
            }
            seen.push(kind);
            match ns.path.as_deref() {
                None | Some("") => plan.new.push(kind),
                Some(p) => {
                    if !p.starts_with('/') {
                        return Err(invalid(format!(
                            "linux.namespaces[{i}].path \"{p}\" is not absolute"
                        )));
                    }
                    let fd = rustix::fs::open(
                        p,
                        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                        rustix::fs::Mode::empty(),
                    )
                    .map_err(std::io::Error::from)
                    .ctx(|| format!("linux.namespaces[{i}].path \"{p}\": cannot open"))?;
                    plan.join.push((kind, fd));
                }
            }
        }
        Ok(plan)
    }

    /// Whether the container gets a new namespace of this kind.
    pub fn creates(&self, k: Kind) -> bool {
        self.new.contains(&k)
    }

    /// Whether the container joins an existing namespace of this kind.
    pub fn joins(&self, k: Kind) -> bool {
        self.join.iter().any(|(j, _)| *j == k)
    }

    /// Whether the container has its own namespace of this kind (new or joined).
    pub fn has(&self, k: Kind) -> bool {
        self.creates(k) || self.joins(k)
    }

    /// `CLONE_NEW*` flags for everything created.
    pub fn clone_flags(&self) -> i32 {
        self.new.iter().fold(0, |f, k| f | k.flag())
    }
}
