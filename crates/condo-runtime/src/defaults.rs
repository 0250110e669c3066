//! What a container gets when its maker does not say otherwise: the usual mounts, the /proc
//! and /sys paths it must not see or change, capability sets and the default seccomp
//! allowlist. Shared by `condo-oci spec` and condod, so both hand out the same isolation.

use serde_json::{json, Value};

use crate::seccomp::{Arg, Seccomp, Syscall};

/// Default `PATH` inside containers.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths hidden from the container (an empty read-only tmpfs, or /dev/null over a file).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but never change.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The minimal capability set of a new bundle (`condo-oci spec`).
pub const MINIMAL_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The reduced set a managed container's root keeps: enough to run services that change
/// users and own files, and nothing that administers the machine (no admin, module, raw I/O,
/// ptrace, time or resource overrides).
pub const CONTAINER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// The usual mounts: /proc, a tmpfs /dev with pts, shm and mqueue, read-only /sys and cgroups.
pub fn mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

/// The namespaces every container gets (a user namespace is added by whoever maps ids).
pub fn namespaces() -> Value {
    json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}])
}

/// `linux.maskedPaths` and `linux.readonlyPaths` as JSON, for a config being built.
pub fn path_lists() -> (Value, Value) {
    (json!(MASKED_PATHS), json!(READONLY_PATHS))
}

/// Every `CLONE_NEW*` flag: a container may fork and make threads, never new namespaces.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Calls a container may make. What is left out administers the host or the kernel (modules,
/// kexec, reboot, swap, clocks, quotas, accounting, the kernel log), changes the mount table
/// or namespaces (mount, pivot_root, the new mount API, setns, unshare), reaches kernel
/// objects by handle or id (open_by_handle_at, kcmp, keyrings, bpf, perf, userfaultfd,
/// io_uring), or is obsolete (uselib, ustat, sysfs, vm86, _sysctl). Anything not named here,
/// including calls newer kernels add, fails with EPERM.
const ALLOWED: &[&str] = &[
    // files and directories
    "access",
    "faccessat",
    "faccessat2",
    "chdir",
    "fchdir",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "fchownat",
    "lchown",
    "lchown32",
    "close",
    "close_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "fcntl64",
    "flock",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fdatasync",
    "fsync",
    "sync",
    "syncfs",
    "sync_file_range",
    "ftruncate",
    "ftruncate64",
    "truncate",
    "truncate64",
    "getcwd",
    "getdents",
    "getdents64",
    "link",
    "linkat",
    "lseek",
    "_llseek",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "open",
    "openat",
    "openat2",
    "read",
    "readv",
    "pread64",
    "preadv",
    "preadv2",
    "readahead",
    "readlink",
    "readlinkat",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "stat",
    "stat64",
    "fstat",
    "fstat64",
    "lstat",
    "lstat64",
    "newfstatat",
    "fstatat64",
    "statx",
    "statfs",
    "statfs64",
    "fstatfs",
    "fstatfs64",
    "symlink",
    "symlinkat",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimes",
    "utimensat",
    "utimensat_time64",
    "futimesat",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "sendfile",
    "sendfile64",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "ioctl",
    "memfd_create",
    "memfd_secret",
    "chroot",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "getxattrat",
    "setxattrat",
    "listxattrat",
    "removexattrat",
    "file_getattr",
    "file_setattr",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fanotify_mark",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    // memory
    "brk",
    "mmap",
    "mmap2",
    "munmap",
    "mremap",
    "mprotect",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "madvise",
    "process_madvise",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "munlock",
    "munlockall",
    "msync",
    "remap_file_pages",
    "membarrier",
    "get_mempolicy",
    "set_mempolicy",
    "mbind",
    "set_mempolicy_home_node",
    "mseal",
    "map_shadow_stack",
    "cachestat",
    // randomness (OpenSSL 3 and glibc ask the kernel; answered with EPERM they do not fall back)
    "getrandom",
    // processes and threads
    "arch_prctl",
    "prctl",
    "capget",
    "capset",
    "clone",
    "clone3",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "getpgrp",
    "setpgid",
    "getsid",
    "setsid",
    "getuid",
    "getuid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getegid",
    "getegid32",
    "getresuid",
    "getresuid32",
    "getresgid",
    "getresgid32",
    "getgroups",
    "getgroups32",
    "setuid",
    "setuid32",
    "setgid",
    "setgid32",
    "setreuid",
    "setreuid32",
    "setregid",
    "setregid32",
    "setresuid",
    "setresuid32",
    "setresgid",
    "setresgid32",
    "setfsuid",
    "setfsuid32",
    "setfsgid",
    "setfsgid32",
    "setgroups",
    "setgroups32",
    "getpriority",
    "setpriority",
    "getrlimit",
    "ugetrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_getattr",
    "sched_setattr",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "ioprio_get",
    "ioprio_set",
    "getcpu",
    "uname",
    "sysinfo",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "get_thread_area",
    "set_thread_area",
    "restart_syscall",
    "seccomp",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "sethostname",
    "setdomainname",
    // signals
    "kill",
    "tkill",
    "tgkill",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "sigaction",
    "sigaltstack",
    "signal",
    "signalfd",
    "signalfd4",
    "sigpending",
    "sigprocmask",
    "sigreturn",
    "sigsuspend",
    "pause",
    // time
    "alarm",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "gettimeofday",
    "time",
    "nanosleep",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    // waiting and events
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_wait",
    "epoll_wait_old",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "poll",
    "ppoll",
    "ppoll_time64",
    "select",
    "_newselect",
    "pselect6",
    "pselect6_time64",
    "pipe",
    "pipe2",
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    // sockets
    "socket",
    "socketpair",
    "socketcall",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "shutdown",
    "send",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recv",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "recvmmsg_time64",
    // System V and POSIX IPC (the container has its own IPC namespace)
    "ipc",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "semctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_notify",
    "mq_getsetattr",
];

/// Personalities a program may ask for: the usual one, 32-bit `uname`, the 2.6 version
/// shim, and the query (0xffffffff).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The default seccomp filter: an allowlist that answers anything else with EPERM; `clone`
/// without namespace flags; `clone3` answers ENOSYS so C libraries fall back to `clone`, whose
/// flags the filter can see.
pub fn seccomp() -> Seccomp {
    let allow = |names: &[&str]| Syscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        ..Default::default()
    };
    let mut rules = vec![allow(
        &ALLOWED
            .iter()
            .copied()
            .filter(|n| !matches!(*n, "clone" | "clone3"))
            .collect::<Vec<_>>(),
    )];
    rules.push(Syscall {
        args: Some(vec![Arg {
            index: 0,
            value: CLONE_NAMESPACES,
            value_two: 0,
            op: "SCMP_CMP_MASKED_EQ".into(),
        }]),
        ..allow(&["clone"])
    });
    rules.push(Syscall {
        names: vec!["clone3".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        args: None,
    });
    for p in PERSONALITIES {
        rules.push(Syscall {
            args: Some(vec![Arg {
                index: 0,
                value: *p,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            }]),
            ..allow(&["personality"])
        });
    }
    Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: Some(vec![
            "SCMP_ARCH_X86_64".into(),
            "SCMP_ARCH_X86".into(),
            "SCMP_ARCH_X32".into(),
        ]),
        syscalls: Some(rules),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_compiles_and_leaves_out_what_administers_the_host() {
        let s = seccomp();
        crate::seccomp::compile(&s).unwrap();
        for denied in [
            "mount",
            "umount2",
            "pivot_root",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "reboot",
            "swapon",
            "setns",
            "unshare",
            "bpf",
            "perf_event_open",
            "open_by_handle_at",
            "keyctl",
            "add_key",
            "userfaultfd",
            "io_uring_setup",
            "syslog",
            "settimeofday",
            "clock_settime",
            "acct",
            "quotactl",
            "fsopen",
            "open_tree",
            "move_mount",
        ] {
            assert!(!ALLOWED.contains(&denied), "{denied} is allowed");
        }
        for needed in ["getrandom", "openat", "execve", "clone"] {
            assert!(ALLOWED.contains(&needed), "{needed} is not allowed");
        }
        let mut seen = std::collections::HashSet::new();
        for n in ALLOWED {
            assert!(seen.insert(n), "{n} is listed twice");
        }
    }
}
