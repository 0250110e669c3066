//! Architectures a seccomp filter can name, and syscall numbers by name on each.

use libseccomp::ScmpArch;

/// `__X32_SYSCALL_BIT`: x32 calls share x86-64's audit arch and set this bit in the number.
pub(super) const X32_BIT: u32 = 0x4000_0000;

/// One architecture a filter can cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Arch {
    /// `SCMP_ARCH_*` name used in config.json.
    pub name: &'static str,
    /// `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub audit: u32,
    /// Arguments are 32 bits wide: only their low word is compared, as libseccomp does.
    pub narrow: bool,
    /// Offset of the unified syscall numbers (424 and up) on this arch.
    pub new_base: u32,
    scmp: ScmpArch,
}

const fn a(name: &'static str, audit: u32, narrow: bool, new_base: u32, scmp: ScmpArch) -> Arch {
    Arch {
        name,
        audit,
        narrow,
        new_base,
        scmp,
    }
}

// AUDIT_ARCH_* = EM_* | 0x8000_0000 (64-bit) | 0x4000_0000 (little endian) | 0x2000_0000 (mips n32).
const ARCHES: &[Arch] = &[
    a("SCMP_ARCH_X86_64", 0xc000_003e, false, 0, ScmpArch::X8664),
    a("SCMP_ARCH_X86", 0x4000_0003, true, 0, ScmpArch::X86),
    a("SCMP_ARCH_X32", 0xc000_003e, true, X32_BIT, ScmpArch::X32),
    a("SCMP_ARCH_ARM", 0x4000_0028, true, 0, ScmpArch::Arm),
    a(
        "SCMP_ARCH_AARCH64",
        0xc000_00b7,
        false,
        0,
        ScmpArch::Aarch64,
    ),
    a(
        "SCMP_ARCH_LOONGARCH64",
        0xc000_0102,
        false,
        0,
        ScmpArch::Loongarch64,
    ),
    a("SCMP_ARCH_M68K", 0x0000_0004, true, 0, ScmpArch::M68k),
    a("SCMP_ARCH_MIPS", 0x0000_0008, true, 4000, ScmpArch::Mips),
    a(
        "SCMP_ARCH_MIPS64",
        0x8000_0008,
        false,
        5000,
        ScmpArch::Mips64,
    ),
    a(
        "SCMP_ARCH_MIPS64N32",
        0xa000_0008,
        true,
        6000,
        ScmpArch::Mips64N32,
    ),
    a(
        "SCMP_ARCH_MIPSEL",
        0x4000_0008,
        true,
        4000,
        ScmpArch::Mipsel,
    ),
    a(
        "SCMP_ARCH_MIPSEL64",
        0xc000_0008,
        false,
        5000,
        ScmpArch::Mipsel64,
    ),
    a(
        "SCMP_ARCH_MIPSEL64N32",
        0xe000_0008,
        true,
        6000,
        ScmpArch::Mipsel64N32,
    ),
    a("SCMP_ARCH_PPC", 0x0000_0014, true, 0, ScmpArch::Ppc),
    a("SCMP_ARCH_PPC64", 0x8000_0015, false, 0, ScmpArch::Ppc64),
    a(
        "SCMP_ARCH_PPC64LE",
        0xc000_0015,
        false,
        0,
        ScmpArch::Ppc64Le,
    ),
    a("SCMP_ARCH_S390", 0x0000_0016, true, 0, ScmpArch::S390),
    a("SCMP_ARCH_S390X", 0x8000_0016, false, 0, ScmpArch::S390X),
    a("SCMP_ARCH_PARISC", 0x0000_000f, true, 0, ScmpArch::Parisc),
    a(
        "SCMP_ARCH_PARISC64",
        0x8000_000f,
        false,
        0,
        ScmpArch::Parisc64,
    ),
    a(
        "SCMP_ARCH_RISCV64",
        0xc000_00f3,
        false,
        0,
        ScmpArch::Riscv64,
    ),
    a("SCMP_ARCH_SHEB", 0x0000_002a, true, 0, ScmpArch::Sheb),
    a("SCMP_ARCH_SH", 0x4000_002a, true, 0, ScmpArch::Sh),
];

/// Every architecture name, for the `features` document.
pub(super) const NAMES: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_SH",
];

/// The architecture named `name` in config.json.
pub(super) fn by_name(name: &str) -> Option<Arch> {
    ARCHES.iter().copied().find(|a| a.name == name)
}

/// The architecture this runtime was built for; every filter covers it.
pub(super) fn native() -> Arch {
    let name = if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else if cfg!(target_arch = "riscv64") {
        "SCMP_ARCH_RISCV64"
    } else if cfg!(target_arch = "s390x") {
        "SCMP_ARCH_S390X"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "SCMP_ARCH_PPC64LE"
    } else if cfg!(target_arch = "loongarch64") {
        "SCMP_ARCH_LOONGARCH64"
    } else if cfg!(target_arch = "arm") {
        "SCMP_ARCH_ARM"
    } else {
        "SCMP_ARCH_X86"
    };
    ARCHES
        .iter()
        .copied()
        .find(|a| a.name == name)
        .unwrap_or(ARCHES[0])
}

// i386 gained direct socket and SysV IPC calls (4.3, 5.1) that libseccomp 2.5 still maps to
// the multiplexers; the numbers come from the kernel's syscall_32.tbl.
const X86_DIRECT: &[(&str, u32)] = &[
    ("socket", 359),
    ("socketpair", 360),
    ("bind", 361),
    ("connect", 362),
    ("listen", 363),
    ("accept4", 364),
    ("getsockopt", 365),
    ("setsockopt", 366),
    ("getsockname", 367),
    ("getpeername", 368),
    ("sendto", 369),
    ("sendmsg", 370),
    ("recvfrom", 371),
    ("recvmsg", 372),
    ("shutdown", 373),
    ("semget", 393),
    ("semctl", 394),
    ("shmget", 395),
    ("shmctl", 396),
    ("shmat", 397),
    ("shmdt", 398),
    ("msgget", 399),
    ("msgsnd", 400),
    ("msgrcv", 401),
    ("msgctl", 402),
];

// Calls newer than the libseccomp this was built against; since 5.1 new calls get one number
// on every arch (plus the arch's base), so they can be listed once.
const UNIFIED: &[(&str, u32)] = &[
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

/// The number of syscall `name` on `arch`, or `None` when that arch lacks it.
pub(super) fn syscall_nr(arch: Arch, name: &str) -> Option<u32> {
    match libseccomp::ScmpSyscall::from_name_by_arch(name, arch.scmp).map(|s| s.as_raw_syscall()) {
        Ok(nr) if nr >= 0 => Some(nr as u32),
        Ok(_) if arch.name == "SCMP_ARCH_X86" => X86_DIRECT
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, nr)| nr),
        Ok(_) => None,
        Err(_) => UNIFIED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, nr)| arch.new_base + nr),
    }
}
