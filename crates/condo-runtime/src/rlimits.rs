//! Resource limits from config.json's `process.rlimits`.

use rustix::process::{Resource, Rlimit as Limit};
use serde::{Deserialize, Serialize};

/// One entry of `process.rlimits`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Rlimit {
    /// The limit's name (`RLIMIT_*`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Hard limit; `u64::MAX` is unlimited.
    pub hard: u64,
    /// Soft limit; `u64::MAX` is unlimited.
    pub soft: u64,
}

/// A validated limit, ready to apply in the container's init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedRlimit {
    /// Position in `process.rlimits`, for messages.
    pub index: usize,
    /// The limit's name (`RLIMIT_*`).
    pub name: &'static str,
    /// The resource.
    pub resource: Resource,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Errors of resource limit validation and application.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// An entry of `process.rlimits` is invalid.
    #[error("process.rlimits[{index}].{field}: {reason}")]
    Invalid {
        /// Position in `process.rlimits`.
        index: usize,
        /// Field within the entry.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The hard limit cannot go above the current one without `CAP_SYS_RESOURCE`.
    #[error(
        "process.rlimits[{index}] ({name}): cannot raise the hard limit from {from} to {to}: {why}"
    )]
    RaiseHard {
        /// Position in `process.rlimits`.
        index: usize,
        /// The limit's name.
        name: &'static str,
        /// The current hard limit.
        from: String,
        /// The requested hard limit.
        to: String,
        /// What stands in the way.
        why: String,
    },
    /// The kernel refused the limit for another reason.
    #[error("process.rlimits[{index}] ({name}): setting soft {soft} hard {hard}: {source}")]
    Apply {
        /// Position in `process.rlimits`.
        index: usize,
        /// The limit's name.
        name: &'static str,
        /// Requested soft limit.
        soft: String,
        /// Requested hard limit.
        hard: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

const NAMES: &[(&str, Resource)] = &[
    ("RLIMIT_CPU", Resource::Cpu),
    ("RLIMIT_FSIZE", Resource::Fsize),
    ("RLIMIT_DATA", Resource::Data),
    ("RLIMIT_STACK", Resource::Stack),
    ("RLIMIT_CORE", Resource::Core),
    ("RLIMIT_RSS", Resource::Rss),
    ("RLIMIT_NPROC", Resource::Nproc),
    ("RLIMIT_NOFILE", Resource::Nofile),
    ("RLIMIT_MEMLOCK", Resource::Memlock),
    ("RLIMIT_AS", Resource::As),
    ("RLIMIT_LOCKS", Resource::Locks),
    ("RLIMIT_SIGPENDING", Resource::Sigpending),
    ("RLIMIT_MSGQUEUE", Resource::Msgqueue),
    ("RLIMIT_NICE", Resource::Nice),
    ("RLIMIT_RTPRIO", Resource::Rtprio),
    ("RLIMIT_RTTIME", Resource::Rttime),
];

/// Every `RLIMIT_*` name accepted, for the `features` document.
pub fn known() -> Vec<&'static str> {
    NAMES.iter().map(|(n, _)| *n).collect()
}

fn show(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

fn opt(v: u64) -> Option<u64> {
    (v != u64::MAX).then_some(v)
}

/// Validates `process.rlimits`: known names, each once, soft not above hard.
pub fn parse(list: &[Rlimit]) -> Result<Vec<ParsedRlimit>, RlimitError> {
    let mut out: Vec<ParsedRlimit> = Vec::with_capacity(list.len());
    for (index, r) in list.iter().enumerate() {
        let invalid = |field, reason: String| RlimitError::Invalid {
            index,
            field,
            reason,
        };
        let &(name, resource) = NAMES
            .iter()
            .find(|(n, _)| *n == r.kind)
            .ok_or_else(|| invalid("type", format!("{:?} is not a resource limit", r.kind)))?;
        if let Some(first) = out.iter().find(|p| p.resource == resource) {
            return Err(invalid(
                "type",
                format!("{name} is already set by process.rlimits[{}]", first.index),
            ));
        }
        if r.soft > r.hard {
            return Err(invalid(
                "soft",
                format!("{} is above the hard limit {}", show(r.soft), show(r.hard)),
            ));
        }
        out.push(ParsedRlimit {
            index,
            name,
            resource,
            soft: r.soft,
            hard: r.hard,
        });
    }
    Ok(out)
}

/// Sets each limit on the calling process (`setrlimit`).
///
/// Call it before the init drops capabilities: raising a hard limit needs `CAP_SYS_RESOURCE`.
pub fn apply(list: &[ParsedRlimit]) -> Result<(), RlimitError> {
    for p in list {
        let new = Limit {
            current: opt(p.soft),
            maximum: opt(p.hard),
        };
        if let Err(e) = rustix::process::setrlimit(p.resource, new) {
            return Err(explain(p, std::io::Error::from(e)));
        }
    }
    Ok(())
}

/// Turns a refusal into the most telling error.
fn explain(p: &ParsedRlimit, source: std::io::Error) -> RlimitError {
    let cur = rustix::process::getrlimit(p.resource)
        .maximum
        .unwrap_or(u64::MAX);
    if source.raw_os_error() == Some(libc::EPERM) && p.hard > cur {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let why = match nr_open {
            Some(n) if p.resource == Resource::Nofile && p.hard > n => {
                format!("it exceeds the kernel's fs.nr_open ({n})")
            }
            _ => "the process lacks CAP_SYS_RESOURCE (operation not permitted)".to_string(),
        };
        return RlimitError::RaiseHard {
            index: p.index,
            name: p.name,
            from: show(cur),
            to: show(p.hard),
            why,
        };
    }
    RlimitError::Apply {
        index: p.index,
        name: p.name,
        soft: show(p.soft),
        hard: show(p.hard),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::testutil::run_in_child;

    fn rl(kind: &str, soft: u64, hard: u64) -> Rlimit {
        Rlimit {
            kind: kind.to_string(),
            hard,
            soft,
        }
    }

    #[test]
    fn parse_errors_name_the_entry() {
        let e = parse(&[rl("RLIMIT_NOFILE", 1, 2), rl("RLIMIT_X", 1, 2)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"process.rlimits[1].type: "RLIMIT_X" is not a resource limit"#
        );
        let e = parse(&[rl("RLIMIT_NOFILE", 10, 2)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.rlimits[0].soft: 10 is above the hard limit 2"
        );
        let e = parse(&[rl("RLIMIT_CORE", 0, 0), rl("RLIMIT_CORE", 1, 1)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.rlimits[1].type: RLIMIT_CORE is already set by process.rlimits[0]"
        );
        let ok = parse(&[
            rl("RLIMIT_AS", u64::MAX, u64::MAX),
            rl("RLIMIT_RTTIME", 5, 6),
        ])
        .unwrap();
        assert_eq!(ok[1].resource, Resource::Rttime);
        assert_eq!(known().len(), 16);
        let json = r#"{"type":"RLIMIT_NOFILE","hard":1024,"soft":512}"#;
        let r: Rlimit = serde_json::from_str(json).unwrap();
        assert_eq!(r, rl("RLIMIT_NOFILE", 512, 1024));
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
    }

    #[test]
    fn limits_apply_and_a_refused_raise_says_why() {
        let status = run_in_child(
            concat!(
                module_path!(),
                "::limits_apply_and_a_refused_raise_says_why"
            ),
            || {
                let list = parse(&[
                    rl("RLIMIT_NOFILE", 512, 1000),
                    rl("RLIMIT_CORE", 0, u64::MAX),
                ])
                .unwrap();
                if let Err(e) = apply(&list) {
                    eprintln!("{e}");
                    return 10;
                }
                let got = rustix::process::getrlimit(Resource::Nofile);
                if got.current != Some(512) || got.maximum != Some(1000) {
                    return 11;
                }
                // Above the current hard limit: refused unless CAP_SYS_RESOURCE is held.
                let raise = parse(&[rl("RLIMIT_NOFILE", 512, 5000)]).unwrap();
                match apply(&raise) {
                    Err(e @ RlimitError::RaiseHard { .. }) => {
                        let text = e.to_string();
                        let want = "process.rlimits[0] (RLIMIT_NOFILE): cannot raise the hard limit from 1000 to 5000:";
                        if text.starts_with(want) && text.contains("CAP_SYS_RESOURCE") {
                            0
                        } else {
                            eprintln!("{text}");
                            13
                        }
                    }
                    Ok(()) if rustix::process::geteuid().is_root() => 0,
                    other => {
                        eprintln!("{other:?}");
                        12
                    }
                }
            },
        );
        assert!(status.success(), "child: {status}");
    }
}
