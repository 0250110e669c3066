//! Process creation and control: clone3 with namespaces and CLONE_INTO_CGROUP, pidfds, waits.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::{check, check_int};

/// The kernel's `struct clone_args` (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct RawCloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP`, missing from older libc releases.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What a clone3 call should do.
#[derive(Debug, Default, Clone)]
pub struct CloneArgs {
    /// `CLONE_*` flags (namespaces, `CLONE_PIDFD` is added by `pidfd`).
    pub flags: u64,
    /// Ask for a pidfd of the child.
    pub pidfd: bool,
    /// Signal sent to the parent when the child ends (usually `SIGCHLD`).
    pub exit_signal: i32,
    /// Place the child into this cgroup v2 directory at birth.
    pub cgroup: Option<RawFd>,
}

/// Which side of a fork the caller is on.
#[derive(Debug)]
pub enum Forked {
    /// The new process.
    Child,
    /// The caller, with the child's pid and its pidfd when asked for.
    Parent {
        /// Child pid as seen from the caller's pid namespace.
        pid: i32,
        /// The pidfd, when `CloneArgs::pidfd` was set.
        pidfd: Option<OwnedFd>,
    },
}

/// Forks the calling process with `clone3`, creating the namespaces in `flags` at once.
///
/// The caller must be single-threaded: only the calling thread exists in the child, so locks
/// held by other threads would stay locked forever.
pub fn clone3(args: &CloneArgs) -> io::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut raw = RawCloneArgs {
        flags: args.flags,
        exit_signal: args.exit_signal as u64,
        ..Default::default()
    };
    if args.pidfd {
        raw.flags |= libc::CLONE_PIDFD as u64;
        raw.pidfd = &mut pidfd as *mut libc::c_int as u64;
    }
    if let Some(fd) = args.cgroup {
        raw.flags |= CLONE_INTO_CGROUP;
        raw.cgroup = fd as u64;
    }
    // SAFETY: `raw` is a valid clone_args of the size passed; with a zero stack the child
    // continues on a copy of the caller's stack like fork(2); `pidfd` outlives the call.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw as *const RawCloneArgs,
            std::mem::size_of::<RawCloneArgs>(),
        )
    })?;
    if ret == 0 {
        return Ok(Forked::Child);
    }
    let pidfd = if args.pidfd && pidfd >= 0 {
        // SAFETY: the kernel just gave us this fd and nothing else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
    } else {
        None
    };
    Ok(Forked::Parent {
        pid: ret as i32,
        pidfd,
    })
}

/// Plain fork (clone3 without flags), for short helper children.
pub fn fork() -> io::Result<Forked> {
    clone3(&CloneArgs {
        exit_signal: libc::SIGCHLD,
        ..Default::default()
    })
}

/// Opens a pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the fd is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2) would".
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// Sends `sig` to `pid` (`kill(2)`).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check_int(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell's convention: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

fn decode(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    }
}

/// Waits for the child `pid` to end, retrying on EINTR.
pub fn waitpid(pid: i32) -> io::Result<ExitStatus> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(decode(status));
    }
}

/// Reaps any one child without blocking; `None` when none has ended.
pub fn try_wait_any() -> io::Result<Option<(i32, ExitStatus)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer.
    let r = check_int(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) })?;
    if r == 0 {
        Ok(None)
    } else {
        Ok(Some((r, decode(status))))
    }
}

/// Reaps `pid` without blocking; `None` while it still runs.
pub fn try_wait(pid: i32) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer.
    let r = check_int(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) })?;
    if r == 0 {
        Ok(None)
    } else {
        Ok(Some(decode(status)))
    }
}

/// Makes the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })?;
    Ok(())
}

/// Asks for `sig` when the parent dies (`PR_SET_PDEATHSIG`).
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) })?;
    Ok(())
}

/// Sets `no_new_privs` for the calling thread and its future children.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// Sets the process's keep-capabilities flag across uid changes (`PR_SET_KEEPCAPS`).
pub fn set_keep_caps(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Sets real, effective and saved user ids.
pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: raw syscall (not the glibc wrapper, which would broadcast to other threads).
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
    Ok(())
}

/// Sets real, effective and saved group ids.
pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: raw syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    Ok(())
}

/// Sets the calling thread's filesystem user and group ids (only this thread's: the raw
/// calls, not glibc's, which would broadcast to every thread). Both calls answer the previous
/// id whatever happens, so success is checked by reading the id back.
pub fn set_thread_fsids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: raw syscalls with integer arguments; they change only this thread's credentials.
    unsafe {
        libc::syscall(libc::SYS_setfsgid, gid);
        libc::syscall(libc::SYS_setfsuid, uid);
    }
    // SAFETY: -1 is never a valid id, so these calls only report the current ids.
    let (u, g) = unsafe {
        (
            libc::syscall(libc::SYS_setfsuid, u32::MAX),
            libc::syscall(libc::SYS_setfsgid, u32::MAX),
        )
    };
    if u as u32 != uid || g as u32 != gid {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}

/// Sets the supplementary groups.
pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a valid slice of gid_t.
    check(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) })?;
    Ok(())
}

/// Sets the file mode creation mask.
pub fn umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Starts a new session (`setsid`).
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check_int(unsafe { libc::setsid() })?;
    Ok(())
}

/// Makes the terminal `fd` the controlling terminal of the session (`TIOCSCTTY`).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: ioctl with an integer argument on a caller-owned fd.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// Duplicates `fd` onto `target` (`dup3` without flags, or a flag clear when they are equal).
pub fn dup_onto(fd: RawFd, target: RawFd) -> io::Result<()> {
    if fd == target {
        // SAFETY: fcntl on a caller-owned fd; clears FD_CLOEXEC.
        check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
        return Ok(());
    }
    // SAFETY: dup3 on caller-owned descriptors.
    check_int(unsafe { libc::dup3(fd, target, 0) })?;
    Ok(())
}

/// Marks every descriptor from `first` upward close-on-exec (`close_range` with CLOEXEC).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Clears FD_CLOEXEC on `fd` so it survives exec.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; errors are reported.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
    Ok(())
}

/// Joins a new session keyring named `name` (`KEYCTL_JOIN_SESSION_KEYRING`).
pub fn join_session_keyring(name: &std::ffi::CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })?;
    Ok(())
}

/// Blocks `signals` in the calling thread and returns the previous mask.
pub fn block_signals(signals: &[i32]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; the old set is an
    // out-pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        Ok(old)
    }
}

/// Restores a signal mask saved by [`block_signals`].
pub fn set_signal_mask(mask: &libc::sigset_t) -> io::Result<()> {
    // SAFETY: `mask` is a valid sigset_t.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Unblocks every signal and resets every handler to its default (for a child about to exec).
pub fn reset_signals() {
    // SAFETY: sigset_t is plain data; resetting dispositions with SIG_DFL is always valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for s in 1..32 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
    }
}

/// Creates a signalfd for `signals` (which must be blocked), close-on-exec.
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the new fd is ours.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        let fd = check_int(libc::signalfd(-1, &set, libc::SFD_CLOEXEC))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one signal number from a signalfd.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: signalfd_siginfo is plain data and the buffer is exactly its size.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let n = libc::read(
            fd.as_raw_fd(),
            &mut info as *mut _ as *mut libc::c_void,
            std::mem::size_of::<libc::signalfd_siginfo>(),
        );
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info.ssi_signo as i32)
    }
}

/// Sets the terminal window size on `fd`.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize for TIOCSWINSZ.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// Opens the peer (slave) side of the pty master `fd` (`TIOCGPTPEER`).
pub fn open_pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: ioctl returning a new fd we take ownership of.
    let fd = check_int(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: new fd, ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Unlocks a pty master (`TIOCSPTLCK` 0) and returns its pty number (`TIOCGPTN`).
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<u32> {
    let mut zero: libc::c_int = 0;
    let mut n: libc::c_uint = 0;
    // SAFETY: both ioctls take pointers to ints that live through the call.
    unsafe {
        check_int(libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut zero))?;
        check_int(libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n))?;
    }
    Ok(n)
}

/// Waits until `fd` is readable or `timeout_ms` passes (negative: forever); true when readable.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

/// Takes ownership of `fd`, a descriptor this process was handed across exec by number: checks
/// that it is open and marks it close-on-exec. Nothing else in the process may own it.
pub fn adopt_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on an integer descriptor; fails with EBADF when it is not open.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open (fcntl succeeded) and, by this function's contract, ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the dumpable flag; a non-dumpable process hides /proc/PID/{exe,fd,mem,…} from others.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    check_int(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Name given to the sealed in-memory copy of the running executable.
pub const SEALED_EXE_NAME: &str = "condo-oci-sealed";

/// Whether this process runs from the sealed in-memory copy made by [`exec_sealed_self`].
pub fn running_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.to_string_lossy()
                .starts_with(&format!("/memfd:{SEALED_EXE_NAME}"))
        })
        .unwrap_or(false)
}

/// Re-executes the current program from a sealed memfd copy of its executable, with the same
/// arguments and environment; returns only on failure. Nothing a process can reach through
/// `/proc/PID/exe` then leads to the executable on disk (CVE-2019-5736).
pub fn exec_sealed_self() -> io::Error {
    let run = || -> io::Result<std::convert::Infallible> {
        let src = std::fs::File::open("/proc/self/exe")?;
        let name = crate::cstring(SEALED_EXE_NAME)?;
        const MFD_EXEC: libc::c_uint = 0x10;
        let mut flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC;
        // SAFETY: NUL-terminated name; the fd is new and becomes owned below.
        let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // Kernels before 6.3 know no MFD_EXEC; their memfds are executable anyway.
            flags &= !MFD_EXEC;
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        }
        check_int(fd)?;
        // SAFETY: the fd was just created and nothing else owns it.
        let mem = unsafe { OwnedFd::from_raw_fd(fd) };
        // Plain reads and writes: splice-based copies can leave pages pinned for a moment,
        // and F_SEAL_WRITE then fails with EBUSY.
        {
            use std::io::{Read, Write};
            let mut out = std::fs::File::from(mem.try_clone()?);
            let mut src = src;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
            }
        }
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        let mut tries = 0;
        loop {
            // SAFETY: fcntl on our fd with an integer argument.
            match check_int(unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, seals) }) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                    // Pages still pinned by an earlier writer: they are released shortly.
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        let args: Vec<std::ffi::CString> = std::env::args_os()
            .map(|a| std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())))
            .collect::<Result<_, _>>()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let env: Vec<std::ffi::CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut b = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
                b.push(b'=');
                b.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
                std::ffi::CString::new(b)
            })
            .collect::<Result<_, _>>()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        let empty = c"";
        // SAFETY: NULL-terminated arrays of NUL-terminated strings that outlive the call; the
        // empty path with AT_EMPTY_PATH executes the memfd itself.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                mem.as_raw_fd(),
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        Err(io::Error::last_os_error())
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Restores the default SIGPIPE action (Rust programs start with it ignored), so writing to a
/// closed pipe ends the program quietly as command-line tools do.
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
