//! The raw `bpf(2)` system call, just enough for cgroup device programs.
//!
//! Only the commands Condo needs are wrapped: load a program, attach it to a cgroup,
//! list the programs attached to a cgroup, open one by id, and detach it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Program type of a cgroup device filter (`BPF_PROG_TYPE_CGROUP_DEVICE`).
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// Attach type of a cgroup device filter (`BPF_CGROUP_DEVICE`).
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// Attach flag allowing several programs on one cgroup (`BPF_F_ALLOW_MULTI`).
pub const F_ALLOW_MULTI: u32 = 2;

const CMD_PROG_LOAD: libc::c_int = 5;
const CMD_PROG_ATTACH: libc::c_int = 8;
const CMD_PROG_DETACH: libc::c_int = 9;
const CMD_PROG_GET_FD_BY_ID: libc::c_int = 13;
const CMD_PROG_QUERY: libc::c_int = 16;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high nibble.
    pub regs: u8,
    /// Signed offset (jumps, memory access).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Build an instruction from its parts.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst & 0x0f) | ((src & 0x0f) << 4),
            off,
            imm,
        }
    }
}

// The leading part of `union bpf_attr` used by BPF_PROG_LOAD; the kernel wants
// every byte past the fields it knows to be zero, which the padding guarantees.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _pad: [u8; 56],
}

#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: [u8; 44],
}

#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: [u8; 36],
}

#[repr(C)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: [u8; 52],
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized `#[repr(C)]` prefix of `union bpf_attr`
    // for this command; the kernel reads (and for some commands writes) at most
    // `size_of::<T>()` bytes of it, and every pointer inside it refers to memory the
    // caller keeps alive for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us as a new, open file
    // descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// Load a program of `prog_type`; on failure the error carries the verifier's log.
pub fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[Insn],
    license: &CStr,
) -> io::Result<OwnedFd> {
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: *b"condo_devices\0\0\0",
        prog_ifindex: 0,
        expected_attach_type,
        _pad: [0; 56],
    };
    match bpf(CMD_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(first) => {
            // Load again with the verifier log on, only to explain the failure.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match bpf(CMD_PROG_LOAD, &mut attr) {
                Ok(fd) => Ok(owned(fd)),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    Err(io::Error::new(
                        first.kind(),
                        format!("{first}: verifier: {}", text.trim()),
                    ))
                }
            }
        }
    }
}

/// Attach `prog` to the cgroup open as `target` (with `flags`, e.g. [`F_ALLOW_MULTI`]).
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
        _pad: [0; 44],
    };
    bpf(CMD_PROG_ATTACH, &mut attr).map(|_| ())
}

/// Detach `prog` from the cgroup open as `target`.
pub fn prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: 0,
        replace_bpf_fd: 0,
        _pad: [0; 44],
    };
    bpf(CMD_PROG_DETACH, &mut attr).map(|_| ())
}

/// Ids of the programs attached directly to the cgroup open as `target`.
pub fn prog_query(target: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: target.as_raw_fd() as u32,
            attach_type,
            query_flags: 0,
            attach_flags: 0,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            _pad: [0; 36],
        };
        match bpf(CMD_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && ids.len() < 65536 => {
                let want = (attr.prog_cnt as usize).max(ids.len() * 2);
                ids = vec![0u32; want];
            }
            Err(e) => return Err(e),
        }
    }
}

/// Open the loaded program with id `id`.
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
        _pad: [0; 52],
    };
    bpf(CMD_PROG_GET_FD_BY_ID, &mut attr).map(owned)
}
