//! Scheduling (`process.scheduler`), I/O priority (`process.ioPriority`) and execution domain
//! (`linux.personality`) of the container process.

use condo_sys::sched::SchedAttr;
use serde::{Deserialize, Serialize};

/// `process.scheduler` of config.json.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Scheduler {
    /// Policy (`SCHED_*`).
    pub policy: String,
    /// Nice value, -20 to 19.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i32>,
    /// Static priority, 1 to 99 for `SCHED_FIFO` and `SCHED_RR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// `SCHED_FLAG_*` flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// `SCHED_DEADLINE` runtime in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<u64>,
    /// `SCHED_DEADLINE` deadline in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// `SCHED_DEADLINE` period in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
}

/// `process.ioPriority` of config.json.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IoPriority {
    /// `IOPRIO_CLASS_RT`, `IOPRIO_CLASS_BE` or `IOPRIO_CLASS_IDLE`.
    pub class: String,
    /// Level within the class, 0 (highest) to 7.
    pub priority: i32,
}

/// `linux.personality` of config.json.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Personality {
    /// `LINUX` or `LINUX32`.
    pub domain: String,
    /// Extra personality flags (`ADDR_NO_RANDOMIZE`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
}

/// Errors of scheduling, I/O priority and personality validation and application.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// A field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// The kernel refused the setting.
    #[error("{field}: {what}: {source}{hint}")]
    Apply {
        /// JSON path of the section.
        field: &'static str,
        /// The system call.
        what: &'static str,
        /// A hint at the usual cause, or empty.
        hint: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SchedError {
    SchedError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

const POLICIES: &[(&str, u32)] = &[
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];
const SCHED_ISO: u32 = 4;
const SCHED_DEADLINE: u32 = 6;

const SCHED_FLAGS: &[(&str, u64)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];

const IO_CLASSES: &[(&str, u32)] = &[
    ("IOPRIO_CLASS_RT", 1),
    ("IOPRIO_CLASS_BE", 2),
    ("IOPRIO_CLASS_IDLE", 3),
];

const DOMAINS: &[(&str, u64)] = &[("LINUX", 0x0000), ("LINUX32", 0x0008)];

const PERSONALITY_FLAGS: &[(&str, u64)] = &[
    ("UNAME26", 0x0020000),
    ("ADDR_NO_RANDOMIZE", 0x0040000),
    ("FDPIC_FUNCPTRS", 0x0080000),
    ("MMAP_PAGE_ZERO", 0x0100000),
    ("ADDR_COMPAT_LAYOUT", 0x0200000),
    ("READ_IMPLIES_EXEC", 0x0400000),
    ("ADDR_LIMIT_32BIT", 0x0800000),
    ("SHORT_INODE", 0x1000000),
    ("WHOLE_SECONDS", 0x2000000),
    ("STICKY_TIMEOUTS", 0x4000000),
    ("ADDR_LIMIT_3GB", 0x8000000),
];

/// Every `SCHED_*` policy name accepted, for the `features` document.
pub fn known_policies() -> Vec<&'static str> {
    POLICIES
        .iter()
        .filter(|(_, p)| *p != SCHED_ISO)
        .map(|(n, _)| *n)
        .collect()
}

/// Every `SCHED_FLAG_*` name accepted, for the `features` document.
pub fn known_sched_flags() -> Vec<&'static str> {
    SCHED_FLAGS.iter().map(|(n, _)| *n).collect()
}

/// Validates `process.scheduler` and returns the kernel's attributes for it.
pub fn parse_scheduler(s: &Scheduler) -> Result<SchedAttr, SchedError> {
    let &(_, policy) = POLICIES
        .iter()
        .find(|(n, _)| *n == s.policy)
        .ok_or_else(|| {
            invalid(
                "process.scheduler.policy",
                format!("{:?} is not a scheduling policy", s.policy),
            )
        })?;
    if policy == SCHED_ISO {
        return Err(invalid(
            "process.scheduler.policy",
            "SCHED_ISO is not implemented by Linux",
        ));
    }
    let nice = s.nice.unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(
            "process.scheduler.nice",
            format!("{nice} is outside -20 to 19"),
        ));
    }
    let priority = s.priority.unwrap_or(0);
    let realtime = s.policy == "SCHED_FIFO" || s.policy == "SCHED_RR";
    if realtime && !(1..=99).contains(&priority) {
        return Err(invalid(
            "process.scheduler.priority",
            format!("{priority} is outside 1 to 99 for {}", s.policy),
        ));
    }
    if !realtime && priority != 0 {
        return Err(invalid(
            "process.scheduler.priority",
            format!("must be 0 for {}", s.policy),
        ));
    }
    let mut flags = 0;
    for (i, f) in s.flags.iter().flatten().enumerate() {
        let &(_, bit) = SCHED_FLAGS.iter().find(|(n, _)| n == f).ok_or_else(|| {
            invalid(
                format!("process.scheduler.flags[{i}]"),
                format!("{f:?} is not a scheduler flag"),
            )
        })?;
        flags |= bit;
    }
    let (runtime, deadline, period) = (
        s.runtime.unwrap_or(0),
        s.deadline.unwrap_or(0),
        s.period.unwrap_or(0),
    );
    if policy == SCHED_DEADLINE {
        if runtime < 1024 {
            return Err(invalid(
                "process.scheduler.runtime",
                "SCHED_DEADLINE needs at least 1024 ns",
            ));
        }
        if deadline < runtime {
            return Err(invalid(
                "process.scheduler.deadline",
                "must not be shorter than runtime",
            ));
        }
        if period != 0 && period < deadline {
            return Err(invalid(
                "process.scheduler.period",
                "must not be shorter than deadline",
            ));
        }
    } else {
        for (name, v) in [
            ("runtime", runtime),
            ("deadline", deadline),
            ("period", period),
        ] {
            if v != 0 {
                return Err(invalid(
                    format!("process.scheduler.{name}"),
                    "only applies to SCHED_DEADLINE",
                ));
            }
        }
    }
    Ok(SchedAttr {
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
        ..SchedAttr::default()
    })
}

/// Applies `process.scheduler` to the calling thread (`sched_setattr`).
pub fn apply_scheduler(s: &Scheduler) -> Result<(), SchedError> {
    let attr = parse_scheduler(s)?;
    condo_sys::sched::sched_setattr(&attr).map_err(|source| SchedError::Apply {
        field: "process.scheduler",
        what: "sched_setattr",
        hint: if source.raw_os_error() == Some(libc::EPERM) {
            " (real-time and deadline policies, and lowering nice, need CAP_SYS_NICE)"
        } else {
            ""
        },
        source,
    })
}

/// Validates `process.ioPriority` and returns the kernel's `ioprio` value for it.
pub fn parse_io_priority(io: &IoPriority) -> Result<u32, SchedError> {
    let &(_, class) = IO_CLASSES
        .iter()
        .find(|(n, _)| *n == io.class)
        .ok_or_else(|| {
            invalid(
                "process.ioPriority.class",
                format!("{:?} is not an I/O priority class", io.class),
            )
        })?;
    if !(0..=7).contains(&io.priority) {
        return Err(invalid(
            "process.ioPriority.priority",
            format!("{} is outside 0 to 7", io.priority),
        ));
    }
    Ok(class << 13 | io.priority as u32)
}

/// Applies `process.ioPriority` to the calling thread (`ioprio_set`).
pub fn apply_io_priority(io: &IoPriority) -> Result<(), SchedError> {
    let prio = parse_io_priority(io)?;
    condo_sys::sched::ioprio_set(prio).map_err(|source| SchedError::Apply {
        field: "process.ioPriority",
        what: "ioprio_set",
        hint: if source.raw_os_error() == Some(libc::EPERM) {
            " (IOPRIO_CLASS_RT needs CAP_SYS_ADMIN or CAP_SYS_NICE)"
        } else {
            ""
        },
        source,
    })
}

/// Validates `linux.personality` and returns the kernel's persona value for it.
pub fn parse_personality(p: &Personality) -> Result<u64, SchedError> {
    let &(_, mut persona) = DOMAINS
        .iter()
        .find(|(n, _)| *n == p.domain)
        .ok_or_else(|| {
            invalid(
                "linux.personality.domain",
                format!("{:?} is not LINUX or LINUX32", p.domain),
            )
        })?;
    for (i, f) in p.flags.iter().flatten().enumerate() {
        let &(_, bit) = PERSONALITY_FLAGS
            .iter()
            .find(|(n, _)| n == f)
            .ok_or_else(|| {
                invalid(
                    format!("linux.personality.flags[{i}]"),
                    format!("{f:?} is not a personality flag"),
                )
            })?;
        persona |= bit;
    }
    Ok(persona)
}

/// Applies `linux.personality` to the calling process (`personality`).
pub fn apply_personality(p: &Personality) -> Result<(), SchedError> {
    let persona = parse_personality(p)?;
    condo_sys::ns::personality(persona)
        .map(|_| ())
        .map_err(|source| SchedError::Apply {
            field: "linux.personality",
            what: "personality",
            hint: "",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::testutil::run_in_child;

    fn sched(policy: &str) -> Scheduler {
        Scheduler {
            policy: policy.to_string(),
            ..Default::default()
        }
    }

    fn err(r: Result<impl std::fmt::Debug, SchedError>) -> String {
        r.expect_err("must be refused").to_string()
    }

    #[test]
    fn validation_errors_name_the_field() {
        assert_eq!(
            err(parse_scheduler(&sched("SCHED_FAST"))),
            r#"process.scheduler.policy: "SCHED_FAST" is not a scheduling policy"#
        );
        assert_eq!(
            err(parse_scheduler(&sched("SCHED_ISO"))),
            "process.scheduler.policy: SCHED_ISO is not implemented by Linux"
        );
        let s = Scheduler {
            nice: Some(20),
            ..sched("SCHED_OTHER")
        };
        assert_eq!(
            err(parse_scheduler(&s)),
            "process.scheduler.nice: 20 is outside -20 to 19"
        );
        let s = Scheduler {
            priority: Some(5),
            ..sched("SCHED_BATCH")
        };
        assert_eq!(
            err(parse_scheduler(&s)),
            "process.scheduler.priority: must be 0 for SCHED_BATCH"
        );
        assert_eq!(
            err(parse_scheduler(&sched("SCHED_FIFO"))),
            "process.scheduler.priority: 0 is outside 1 to 99 for SCHED_FIFO"
        );
        let s = Scheduler {
            flags: Some(vec!["SCHED_FLAG_RECLAIM".into(), "SCHED_FLAG_X".into()]),
            ..sched("SCHED_OTHER")
        };
        assert_eq!(
            err(parse_scheduler(&s)),
            r#"process.scheduler.flags[1]: "SCHED_FLAG_X" is not a scheduler flag"#
        );
        let s = Scheduler {
            runtime: Some(5000),
            ..sched("SCHED_OTHER")
        };
        assert_eq!(
            err(parse_scheduler(&s)),
            "process.scheduler.runtime: only applies to SCHED_DEADLINE"
        );
        let s = Scheduler {
            runtime: Some(5000),
            deadline: Some(4000),
            ..sched("SCHED_DEADLINE")
        };
        assert_eq!(
            err(parse_scheduler(&s)),
            "process.scheduler.deadline: must not be shorter than runtime"
        );
        let s = Scheduler {
            runtime: Some(5000),
            deadline: Some(9000),
            period: Some(10000),
            ..sched("SCHED_DEADLINE")
        };
        assert_eq!(parse_scheduler(&s).unwrap().policy, 6);

        let io = IoPriority {
            class: "IOPRIO_CLASS_NONE".into(),
            priority: 0,
        };
        assert_eq!(
            err(parse_io_priority(&io)),
            r#"process.ioPriority.class: "IOPRIO_CLASS_NONE" is not an I/O priority class"#
        );
        let io = IoPriority {
            class: "IOPRIO_CLASS_BE".into(),
            priority: 8,
        };
        assert_eq!(
            err(parse_io_priority(&io)),
            "process.ioPriority.priority: 8 is outside 0 to 7"
        );
        assert_eq!(
            parse_io_priority(&IoPriority {
                class: "IOPRIO_CLASS_BE".into(),
                priority: 4
            })
            .unwrap(),
            2 << 13 | 4
        );

        let p = Personality {
            domain: "LINUX64".into(),
            flags: None,
        };
        assert_eq!(
            err(parse_personality(&p)),
            r#"linux.personality.domain: "LINUX64" is not LINUX or LINUX32"#
        );
        let p = Personality {
            domain: "LINUX".into(),
            flags: Some(vec!["ADDR_NO_RANDOMIZE".into(), "NOPE".into()]),
        };
        assert_eq!(
            err(parse_personality(&p)),
            r#"linux.personality.flags[1]: "NOPE" is not a personality flag"#
        );
        let json = r#"{"policy":"SCHED_BATCH","nice":5,"flags":["SCHED_FLAG_RESET_ON_FORK"]}"#;
        let s: Scheduler = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
        assert!(!known_policies().contains(&"SCHED_ISO"));
        assert_eq!(known_sched_flags().len(), 7);
    }

    #[test]
    fn child_gets_batch_idle_io_and_linux32() {
        let status = run_in_child(
            concat!(module_path!(), "::child_gets_batch_idle_io_and_linux32"),
            || {
                let s = Scheduler {
                    nice: Some(5),
                    ..sched("SCHED_BATCH")
                };
                let io = IoPriority {
                    class: "IOPRIO_CLASS_IDLE".into(),
                    priority: 0,
                };
                let p = Personality {
                    domain: "LINUX32".into(),
                    flags: None,
                };
                let r = apply_scheduler(&s)
                    .and_then(|_| apply_io_priority(&io))
                    .and_then(|_| apply_personality(&p));
                if let Err(e) = r {
                    eprintln!("{e}");
                    return 10;
                }
                match condo_sys::sched::sched_getattr() {
                    Ok(a) if a.policy == 3 && a.nice == 5 => {}
                    other => {
                        eprintln!("{other:?}");
                        return 11;
                    }
                }
                if condo_sys::sched::ioprio_get().ok() != Some(3 << 13) {
                    return 12;
                }
                match condo_sys::ns::personality(0xffff_ffff) {
                    Ok(v) if v & 0xff == 8 => 0,
                    other => {
                        eprintln!("{other:?}");
                        13
                    }
                }
            },
        );
        assert!(status.success(), "child: {status}");
    }
}
