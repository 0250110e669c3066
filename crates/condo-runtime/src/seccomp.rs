//! Seccomp filters from config.json's `linux.seccomp`.
//!
//! [`compile`] validates the whole section and turns it into a classic BPF program in the
//! runtime, before the fork; the container's init only has to [`SeccompProgram::load`] it.
//! Code generation is our own (a binary search on the syscall number per arch, a few
//! instructions deep) because libseccomp needs milliseconds to build a large filter; libseccomp
//! only supplies the syscall numbers by name.

mod arch;
mod bpf;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::arch::Arch;
use self::bpf::{ArchPlan, Cond, Emitter, Leaf, Op, Rule};

/// `linux.seccomp` of config.json.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    /// Action for calls no rule matches (`SCMP_ACT_*`).
    pub default_action: String,
    /// Errno (or trace message) of the default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Architectures the filter covers besides the native one (`SCMP_ARCH_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// `SECCOMP_FILTER_FLAG_*` flags to load the filter with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// Unix socket that receives the notify fd when a rule uses `SCMP_ACT_NOTIFY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<PathBuf>,
    /// Opaque text passed to the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// The rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<Syscall>>,
}

/// One rule of `linux.seccomp.syscalls`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    /// Names of the calls the rule applies to.
    pub names: Vec<String>,
    /// Action when the rule matches (`SCMP_ACT_*`).
    pub action: String,
    /// Errno (or trace message) of the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions, all of which must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Arg>>,
}

/// One argument condition of a rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Argument position, 0 to 5.
    pub index: u32,
    /// Value compared with (the mask for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// Second value (the masked value expected by `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// Comparison (`SCMP_CMP_*`).
    pub op: String,
}

/// Errors of seccomp validation, loading and notify fd hand-over.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A field of `linux.seccomp` is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// The program exceeds the kernel's limit of 4096 instructions.
    #[error("linux.seccomp: the filter needs {0} instructions, more than the kernel's 4096")]
    TooLarge(usize),
    /// The kernel refused the filter.
    #[error("loading the seccomp filter: {0}")]
    Load(#[source] io::Error),
    /// The notify fd could not be sent to the listener.
    #[error("linux.seccomp.listenerPath {path}: sending the notify fd: {source}")]
    Listener {
        /// The listener socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

const OPERATORS: &[(&str, Op)] = &[
    ("SCMP_CMP_NE", Op::Ne),
    ("SCMP_CMP_LT", Op::Lt),
    ("SCMP_CMP_LE", Op::Le),
    ("SCMP_CMP_EQ", Op::Eq),
    ("SCMP_CMP_GE", Op::Ge),
    ("SCMP_CMP_GT", Op::Gt),
    ("SCMP_CMP_MASKED_EQ", Op::MaskedEq),
];
const OPERATOR_NAMES: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

const FLAGS: &[(&str, u32)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32),
];
const FLAG_NAMES: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];
const FLAG_TSYNC: u32 = 1;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const ENOSYS: u32 = 38;

// Calls the init makes after loading the filter to hand the notify fd over: notifying them
// would stop the init before anyone holds the fd to answer.
const NOT_NOTIFIABLE: &[&str] = &["write", "sendmsg"];

/// Every `SCMP_ACT_*` name accepted, for the `features` document.
pub fn known_actions() -> &'static [&'static str] {
    ACTIONS
}

/// Every `SCMP_CMP_*` name accepted, for the `features` document.
pub fn known_operators() -> &'static [&'static str] {
    OPERATOR_NAMES
}

/// Every `SCMP_ARCH_*` name accepted, for the `features` document.
pub fn known_archs() -> &'static [&'static str] {
    arch::NAMES
}

/// Every `SECCOMP_FILTER_FLAG_*` name accepted, for the `features` document.
pub fn known_flags() -> &'static [&'static str] {
    FLAG_NAMES
}

/// The seccomp return value of action `name` with its optional errno.
fn action(
    name: &str,
    errno: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<u32, SeccompError> {
    let base = match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_ERRNO" => RET_ERRNO,
        "SCMP_ACT_TRACE" => RET_TRACE,
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_NOTIFY" => RET_USER_NOTIF,
        _ => return Err(invalid(field, format!("{name:?} is not a seccomp action"))),
    };
    match (base, errno) {
        (RET_ERRNO, Some(e)) if e > 4095 => Err(invalid(
            errno_field,
            format!("{e} is not an errno (at most 4095)"),
        )),
        (RET_TRACE, Some(e)) if e > 0xffff => Err(invalid(
            errno_field,
            format!("{e} does not fit the 16-bit trace message"),
        )),
        (RET_ERRNO | RET_TRACE, e) => Ok(base | e.unwrap_or(libc::EPERM as u32)),
        (_, Some(_)) => Err(invalid(errno_field, format!("{name} takes no errno"))),
        (_, None) => Ok(base),
    }
}

/// A compiled filter, ready to load in the container's init.
#[derive(Clone)]
pub struct SeccompProgram {
    insns: Vec<libc::sock_filter>,
    flags: u32,
    notify: bool,
}

impl std::fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeccompProgram")
            .field("instructions", &self.insns.len())
            .field("flags", &self.flags)
            .field("notify", &self.notify)
            .finish()
    }
}

impl SeccompProgram {
    /// Installs the filter on the calling thread; returns the notify fd when a rule notifies.
    ///
    /// Needs `no_new_privs` or `CAP_SYS_ADMIN`. Allocates nothing, so it is safe right after
    /// a fork.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        condo_sys::seccomp::set_mode_filter(self.flags, &self.insns).map_err(SeccompError::Load)
    }

    /// Whether a rule uses `SCMP_ACT_NOTIFY`, so [`load`](Self::load) yields a notify fd.
    pub fn has_notify(&self) -> bool {
        self.notify
    }

    /// Number of BPF instructions.
    pub fn instruction_count(&self) -> usize {
        self.insns.len()
    }

    /// `SECCOMP_FILTER_FLAG_*` bits the filter is loaded with.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// A syscall number on one arch bound to a rule, sorted so the strongest action comes first.
#[derive(Clone, Copy)]
struct Entry {
    nr: u32,
    rank: i32,
    order: u32,
    rule: u32,
}

/// Precedence of a return value as the kernel orders them: lower is stronger.
fn rank(ret: u32) -> i32 {
    (ret & 0xffff_0000) as i32
}

fn parse_conds(args: &[Arg], field: &str) -> Result<Vec<Cond>, SeccompError> {
    let mut conds = Vec::with_capacity(args.len());
    for (k, a) in args.iter().enumerate() {
        let Some(&(_, op)) = OPERATORS.iter().find(|(n, _)| *n == a.op) else {
            let f = format!("{field}.args[{k}].op");
            return Err(invalid(f, format!("{:?} is not a seccomp operator", a.op)));
        };
        if a.index > 5 {
            let f = format!("{field}.args[{k}].index");
            return Err(invalid(
                f,
                format!("{} is not an argument position (0 to 5)", a.index),
            ));
        }
        conds.push(Cond {
            index: a.index,
            op,
            value: a.value,
            value_two: a.value_two,
        });
    }
    Ok(conds)
}

/// Validates `linux.seccomp` and compiles it to a BPF program.
///
/// Unknown syscall names are skipped (they may not exist on this kernel or arch). When several
/// rules match a call, the strongest action wins, as between stacked filters; conditions on
/// the same argument given twice in one rule are alternatives, as in runc. With an
/// `SCMP_ACT_ERRNO` default action, numbers above the highest call the profile names fail
/// with `ENOSYS`, so that programs fall back from calls newer than the profile.
pub fn compile(s: &Seccomp) -> Result<SeccompProgram, SeccompError> {
    let default = action(
        &s.default_action,
        s.default_errno_ret,
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == RET_USER_NOTIF {
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut arches = vec![arch::native()];
    for (i, name) in s.architectures.iter().flatten().enumerate() {
        let a = arch::by_name(name).ok_or_else(|| {
            invalid(
                format!("linux.seccomp.architectures[{i}]"),
                format!("{name:?} is not a seccomp architecture"),
            )
        })?;
        if !arches.contains(&a) {
            arches.push(a);
        }
    }
    let mut flags = 0;
    for (i, name) in s.flags.iter().flatten().enumerate() {
        let &(_, bit) = FLAGS.iter().find(|(n, _)| n == name).ok_or_else(|| {
            invalid(
                format!("linux.seccomp.flags[{i}]"),
                format!("{name:?} is not a seccomp filter flag"),
            )
        })?;
        flags |= bit;
    }
    if let Some(p) = &s.listener_path {
        if !p.is_absolute() {
            return Err(invalid(
                "linux.seccomp.listenerPath",
                format!("{} is not an absolute path", p.display()),
            ));
        }
    }

    let mut rules: Vec<Rule> = Vec::new();
    let mut entries: Vec<Vec<Entry>> = vec![Vec::with_capacity(512); arches.len()];
    let mut notify = false;
    for (i, sc) in s.syscalls.iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let ret = action(
            &sc.action,
            sc.errno_ret,
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        if sc.names.is_empty() {
            return Err(invalid(
                format!("{field}.names"),
                "must name at least one syscall",
            ));
        }
        let conds = parse_conds(sc.args.as_deref().unwrap_or(&[]), &field)?;
        if ret == RET_USER_NOTIF {
            notify = true;
            if let Some((j, n)) = sc
                .names
                .iter()
                .enumerate()
                .find(|(_, n)| NOT_NOTIFIABLE.contains(&n.as_str()))
            {
                return Err(invalid(
                    format!("{field}.names[{j}]"),
                    format!("{n:?} cannot use SCMP_ACT_NOTIFY: the runtime needs it to hand over the notify fd"),
                ));
            }
        }
        let first = rules.len() as u32;
        let repeated = conds
            .iter()
            .enumerate()
            .any(|(k, c)| conds[..k].iter().any(|d| d.index == c.index));
        if repeated {
            rules.extend(conds.iter().map(|c| Rule {
                ret,
                conds: vec![*c],
            }));
        } else {
            rules.push(Rule { ret, conds });
        }
        let last = rules.len() as u32;
        for name in &sc.names {
            for (a, list) in arches.iter().zip(entries.iter_mut()) {
                if let Some(nr) = arch::syscall_nr(*a, name) {
                    for rule in first..last {
                        list.push(Entry {
                            nr,
                            rank: rank(ret),
                            order: rule,
                            rule,
                        });
                    }
                }
            }
        }
    }
    if notify && s.listener_path.is_none() {
        return Err(invalid(
            "linux.seccomp.listenerPath",
            "is required when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    if notify {
        flags |= condo_sys::seccomp::FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else {
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }

    let tail = if default & 0xffff_0000 == RET_ERRNO {
        RET_ERRNO | ENOSYS
    } else {
        default
    };
    let plans: Vec<(Arch, ArchPlan)> = arches
        .iter()
        .zip(entries.iter_mut())
        .map(|(a, list)| (*a, plan(list, &rules, default, tail)))
        .collect();
    let mut e = Emitter::new();
    e.program(&plans, default, RET_KILL_PROCESS);
    let insns = e.finish();
    if insns.len() > 4096 {
        return Err(SeccompError::TooLarge(insns.len()));
    }
    Ok(SeccompProgram {
        insns,
        flags,
        notify,
    })
}

/// Appends the range starting at `start`, merging it with the ranges before when it can.
fn push_range(ranges: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf) {
    if ranges.last().is_some_and(|&(s, _)| s == start) {
        ranges.pop();
    }
    match ranges.last() {
        Some(&(_, last)) if last == leaf && matches!(leaf, Leaf::Ret(_)) => {}
        _ => ranges.push((start, leaf)),
    }
}

/// The ranges of syscall numbers of one arch and what each leads to.
fn plan(list: &mut [Entry], rules: &[Rule], default: u32, tail: u32) -> ArchPlan {
    list.sort_unstable_by_key(|e| (e.nr, e.rank, e.order));
    let mut p = ArchPlan::default();
    push_range(&mut p.ranges, 0, Leaf::Ret(default));
    let mut i = 0;
    while i < list.len() {
        let nr = list[i].nr;
        let start = p.rules.len();
        while i < list.len() && list[i].nr == nr {
            let r = &rules[list[i].rule as usize];
            i += 1;
            if p.rules.len() > start && p.rules.last().is_some_and(|l| l.conds.is_empty()) {
                continue;
            }
            p.rules.push(r.clone());
        }
        while p.rules.len() > start && p.rules.last().is_some_and(|l| l.ret == default) {
            p.rules.pop();
        }
        let leaf = match &p.rules[start..] {
            [] => Leaf::Ret(default),
            [only] if only.conds.is_empty() => {
                let k = only.ret;
                p.rules.truncate(start);
                Leaf::Ret(k)
            }
            _ => Leaf::Rules(start, p.rules.len()),
        };
        push_range(&mut p.ranges, nr, leaf);
        if let Some(next) = nr.checked_add(1) {
            let after = if i == list.len() { tail } else { default };
            push_range(&mut p.ranges, next, Leaf::Ret(after));
        }
    }
    p
}

/// The OCI "container process state" sent to a seccomp listener with the notify fd.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProcessState {
    /// Runtime-spec version.
    pub oci_version: String,
    /// Names of the fds sent along, in order: `["seccompFd"]`.
    pub fds: Vec<String>,
    /// Pid of the container process, in the runtime's pid namespace.
    pub pid: i32,
    /// `linux.seccomp.listenerMetadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// The container's state, as `state` prints it.
    pub state: serde_json::Value,
}

impl ContainerProcessState {
    /// The message for the container process `pid` with the container `state`.
    pub fn new(
        pid: i32,
        metadata: Option<String>,
        state: serde_json::Value,
    ) -> ContainerProcessState {
        ContainerProcessState {
            oci_version: "1.2.0".to_string(),
            fds: vec!["seccompFd".to_string()],
            pid,
            metadata,
            state,
        }
    }
}

/// Connects to the listener socket and sends `state` as JSON with `notify_fd` (SCM_RIGHTS).
pub fn send_to_listener(
    listener_path: &Path,
    notify_fd: BorrowedFd<'_>,
    state: &ContainerProcessState,
) -> Result<(), SeccompError> {
    let err = |source: io::Error| SeccompError::Listener {
        path: listener_path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec(state).map_err(|e| err(io::Error::other(e)))?;
    let sock = UnixStream::connect(listener_path).map_err(err)?;
    condo_sys::fdpass::send_with_fds(sock.as_fd(), &json, &[notify_fd.as_raw_fd()]).map_err(err)
}
