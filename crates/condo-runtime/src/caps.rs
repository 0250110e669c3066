//! Capability sets from config.json's `process.capabilities`.
//!
//! The order in the init: [`CapSets::drop_bounding`] while still privileged, then
//! [`keep_caps_on_setuid`]`(true)`, setgroups/setgid/setuid, `keep_caps_on_setuid(false)`, then
//! [`CapSets::apply`].

use std::sync::OnceLock;

use rustix::thread::{CapabilitySet, CapabilitySets};
use serde::{Deserialize, Serialize};

/// `process.capabilities` of config.json.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Bounding set: the most the process and its children can ever gain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<Vec<String>>,
    /// Effective set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Vec<String>>,
    /// Inheritable set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable: Option<Vec<String>>,
    /// Permitted set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<Vec<String>>,
    /// Ambient set: kept across execve of unprivileged programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Vec<String>>,
}

/// Errors of capability validation and application.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A name or a combination of sets is invalid.
    #[error("process.capabilities.{set}[{index}]: {reason}")]
    Invalid {
        /// The set (`bounding`, `effective`, …).
        set: &'static str,
        /// Position in that list.
        index: usize,
        /// Why it is refused.
        reason: String,
    },
    /// A capability could not be dropped from the bounding set.
    #[error("dropping {name} from the bounding set (needs CAP_SETPCAP): {source}")]
    Bounding {
        /// The capability.
        name: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `capset` refused the effective, permitted and inheritable sets.
    #[error("setting process.capabilities (effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x}): {source}")]
    Capset {
        /// Effective mask asked for.
        effective: u64,
        /// Permitted mask asked for.
        permitted: u64,
        /// Inheritable mask asked for.
        inheritable: u64,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A capability could not be raised in the ambient set.
    #[error("raising {name} in the ambient set: {source}")]
    Ambient {
        /// The capability.
        name: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A prctl needed around the uid change failed.
    #[error("prctl(PR_SET_KEEPCAPS): {0}")]
    KeepCaps(#[source] std::io::Error),
}

const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability name accepted, indexed by capability number.
pub fn known() -> &'static [&'static str] {
    &NAMES
}

/// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`), read once.
pub fn last_cap() -> u32 {
    static LAST: OnceLock<u32> = OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(NAMES.len() as u32 - 1)
            .min(63)
    })
}

fn name_of(cap: u32) -> &'static str {
    NAMES
        .get(cap as usize)
        .copied()
        .unwrap_or("an unnamed capability")
}

/// Validated capability sets as bit masks (bit n is capability n).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Ambient set.
    pub ambient: u64,
    /// Highest capability the running kernel knows; higher bits are ignored when applying.
    pub last_cap: u32,
}

fn mask(set: &'static str, names: &Option<Vec<String>>) -> Result<u64, CapsError> {
    let mut m = 0u64;
    for (index, n) in names.iter().flatten().enumerate() {
        let cap = NAMES
            .iter()
            .position(|k| k == n)
            .ok_or_else(|| CapsError::Invalid {
                set,
                index,
                reason: format!("{n:?} is not a capability"),
            })?;
        m |= 1 << cap;
    }
    Ok(m)
}

/// Validates `process.capabilities`: every name known, effective within permitted.
///
/// Ambient capabilities missing from permitted or inheritable are left out, as the kernel
/// cannot hold them.
pub fn parse(c: &Capabilities) -> Result<CapSets, CapsError> {
    let sets = CapSets {
        bounding: mask("bounding", &c.bounding)?,
        effective: mask("effective", &c.effective)?,
        inheritable: mask("inheritable", &c.inheritable)?,
        permitted: mask("permitted", &c.permitted)?,
        ambient: mask("ambient", &c.ambient)?,
        last_cap: last_cap(),
    };
    let extra = sets.effective & !sets.permitted;
    if extra != 0 {
        let names = c.effective.iter().flatten();
        if let Some((index, n)) = names.enumerate().find(|(_, n)| {
            NAMES
                .iter()
                .position(|k| k == n)
                .is_some_and(|b| extra & (1 << b) != 0)
        }) {
            return Err(CapsError::Invalid {
                set: "effective",
                index,
                reason: format!("{n} is not in process.capabilities.permitted"),
            });
        }
    }
    Ok(CapSets {
        ambient: sets.ambient & sets.permitted & sets.inheritable,
        ..sets
    })
}

/// Sets or clears `PR_SET_KEEPCAPS`, which keeps the permitted set across a change from uid 0.
pub fn keep_caps_on_setuid(on: bool) -> Result<(), CapsError> {
    condo_sys::process::set_keep_caps(on).map_err(CapsError::KeepCaps)
}

impl CapSets {
    /// Bits the running kernel knows.
    fn valid(&self) -> u64 {
        if self.last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (self.last_cap + 1)) - 1
        }
    }

    /// Drops every capability outside the bounding set; needs `CAP_SETPCAP`, so call it
    /// before the uid change.
    pub fn drop_bounding(&self) -> Result<(), CapsError> {
        for cap in 0..=self.last_cap {
            if self.bounding & (1 << cap) != 0 {
                continue;
            }
            if let Err(e) = condo_sys::capability::bounding_drop(cap) {
                // Already gone is as good as dropped.
                if condo_sys::capability::bounding_has(cap).unwrap_or(true) {
                    return Err(CapsError::Bounding {
                        name: name_of(cap),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// Sets effective, permitted and inheritable with `capset`, then the ambient set; call it
    /// after setgroups/setgid/setuid.
    pub fn apply(&self) -> Result<(), CapsError> {
        let v = self.valid();
        let (effective, permitted, inheritable) =
            (self.effective & v, self.permitted & v, self.inheritable & v);
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(effective),
            permitted: CapabilitySet::from_bits_retain(permitted),
            inheritable: CapabilitySet::from_bits_retain(inheritable),
        };
        rustix::thread::set_capabilities(None, sets).map_err(|e| CapsError::Capset {
            effective,
            permitted,
            inheritable,
            source: e.into(),
        })?;
        condo_sys::capability::ambient_clear_all().map_err(|source| CapsError::Ambient {
            name: "(clearing all)",
            source,
        })?;
        let ambient = self.ambient & v;
        for cap in 0..=self.last_cap {
            if ambient & (1 << cap) != 0 {
                condo_sys::capability::ambient_raise(cap).map_err(|source| CapsError::Ambient {
                    name: name_of(cap),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

impl CapSets {
    /// Checks that every capability asked for is one this process can still grant (it is in our
    /// own bounding set), so a container that cannot get its capabilities fails at `create`
    /// with the field named, not later at `start`.
    pub fn check_grantable(&self) -> Result<(), String> {
        let wanted = [
            ("permitted", self.permitted),
            ("effective", self.effective),
            ("inheritable", self.inheritable),
            ("ambient", self.ambient),
        ];
        for (set, m) in wanted {
            for cap in 0..=self.last_cap.min(63) {
                if m & (1u64 << cap) == 0 {
                    continue;
                }
                if !condo_sys::capability::bounding_has(cap).unwrap_or(true) {
                    let name = NAMES.get(cap as usize).copied().unwrap_or("?");
                    return Err(format!(
                        "process.capabilities.{set}: {name} is not in the runtime's own bounding set, so it cannot be granted on this host"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::testutil::{is_root, run_in_child, status_field};

    fn list(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parse_errors_name_the_set_and_index() {
        let c = Capabilities {
            bounding: list(&["CAP_CHOWN", "CAP_KILL", "CAP_FOO"]),
            ..Default::default()
        };
        assert_eq!(
            parse(&c).unwrap_err().to_string(),
            r#"process.capabilities.bounding[2]: "CAP_FOO" is not a capability"#
        );
        let c = Capabilities {
            ambient: list(&["chown"]),
            ..Default::default()
        };
        assert_eq!(
            parse(&c).unwrap_err().to_string(),
            r#"process.capabilities.ambient[0]: "chown" is not a capability"#
        );
        let c = Capabilities {
            effective: list(&["CAP_CHOWN", "CAP_KILL"]),
            permitted: list(&["CAP_CHOWN"]),
            ..Default::default()
        };
        assert_eq!(
            parse(&c).unwrap_err().to_string(),
            "process.capabilities.effective[1]: CAP_KILL is not in process.capabilities.permitted"
        );
        let c = Capabilities {
            bounding: list(&["CAP_CHECKPOINT_RESTORE", "CAP_CHOWN"]),
            permitted: list(&["CAP_NET_RAW"]),
            ambient: list(&["CAP_NET_RAW"]),
            ..Default::default()
        };
        let s = parse(&c).unwrap();
        assert_eq!(s.bounding, (1 << 40) | 1);
        assert_eq!(s.ambient, 0, "ambient needs inheritable too");
        assert_eq!(known().len(), 41);
        assert_eq!(known()[40], "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn child_drops_to_the_given_sets_across_a_uid_change() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let status = run_in_child(
            concat!(
                module_path!(),
                "::child_drops_to_the_given_sets_across_a_uid_change"
            ),
            || {
                let c = Capabilities {
                    bounding: list(&[
                        "CAP_CHOWN",
                        "CAP_KILL",
                        "CAP_NET_BIND_SERVICE",
                        "CAP_NET_RAW",
                    ]),
                    effective: list(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]),
                    permitted: list(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]),
                    inheritable: list(&["CAP_NET_BIND_SERVICE", "CAP_KILL"]),
                    ambient: list(&["CAP_NET_BIND_SERVICE"]),
                };
                let sets = parse(&c).unwrap();
                let steps = || -> Result<(), String> {
                    sets.drop_bounding().map_err(|e| e.to_string())?;
                    keep_caps_on_setuid(true).map_err(|e| e.to_string())?;
                    condo_sys::process::setresgid(1000).map_err(|e| e.to_string())?;
                    condo_sys::process::setresuid(1000).map_err(|e| e.to_string())?;
                    keep_caps_on_setuid(false).map_err(|e| e.to_string())?;
                    sets.apply().map_err(|e| e.to_string())
                };
                if let Err(e) = steps() {
                    eprintln!("{e}");
                    return 10;
                }
                let want = [
                    ("CapBnd", (1u64 << 0) | (1 << 5) | (1 << 10) | (1 << 13)),
                    ("CapEff", (1 << 0) | (1 << 10)),
                    ("CapPrm", (1 << 0) | (1 << 10) | (1 << 5)),
                    ("CapInh", (1 << 10) | (1 << 5)),
                    ("CapAmb", 1 << 10),
                ];
                for (i, (field, mask)) in want.iter().enumerate() {
                    let got = u64::from_str_radix(&status_field(field), 16).unwrap_or(u64::MAX);
                    if got != *mask {
                        eprintln!("{field}: {got:#x}, want {mask:#x}");
                        return 11 + i as i32;
                    }
                }
                0
            },
        );
        assert!(status.success(), "child: {status}");
    }
}
