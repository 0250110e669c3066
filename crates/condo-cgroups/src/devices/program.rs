//! The eBPF program of a cgroup v2 device filter, built from OCI rules.
//!
//! The context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! with `access_type = access << 16 | type`. Rules are tested from the last to the first
//! and the first that matches decides (so the last matching rule wins, as in the spec);
//! a request no rule matches is denied.

use crate::error::Error;
use crate::resources::DeviceRule;
use condo_sys::bpf::Insn;

/// Kernel device types in `access_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    /// Block device (`BPF_DEVCG_DEV_BLOCK`).
    Block = 1,
    /// Character device (`BPF_DEVCG_DEV_CHAR`).
    Char = 2,
}

/// Kernel access bits in `access_type >> 16`.
pub struct Access;

impl Access {
    /// mknod.
    pub const MKNOD: u32 = 1;
    /// read.
    pub const READ: u32 = 2;
    /// write.
    pub const WRITE: u32 = 4;
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV64_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const AND64_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH64_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const JNE32_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JEQ32_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn access_bits(s: &str) -> u32 {
    let s = if s.is_empty() { "rwm" } else { s };
    s.chars()
        .map(|c| match c {
            'm' => Access::MKNOD,
            'r' => Access::READ,
            'w' => Access::WRITE,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// One rule's block of instructions; jumps use `off = i16::MIN` until patched to "skip".
fn block(i: usize, d: &DeviceRule) -> Result<(Vec<Insn>, bool), Error> {
    crate::resources::validate_device(i, d)?;
    let mut v = Vec::new();
    let kind = d.kind.as_deref().filter(|k| !k.is_empty()).unwrap_or("a");
    match kind {
        "b" => v.push(Insn::new(JNE32_K, 2, 0, i16::MIN, DevType::Block as i32)),
        "c" => v.push(Insn::new(JNE32_K, 2, 0, i16::MIN, DevType::Char as i32)),
        _ => {}
    }
    let acc = access_bits(d.access.as_deref().unwrap_or(""));
    if acc != 7 {
        v.push(Insn::new(MOV64_X, 6, 3, 0, 0));
        if d.allow {
            // Allow only when every requested bit is granted.
            v.push(Insn::new(AND64_K, 6, 0, 0, (!acc & 7) as i32));
            v.push(Insn::new(JNE32_K, 6, 0, i16::MIN, 0));
        } else {
            // Deny when any requested bit is denied.
            v.push(Insn::new(AND64_K, 6, 0, 0, acc as i32));
            v.push(Insn::new(JEQ32_K, 6, 0, i16::MIN, 0));
        }
    }
    for (reg, n) in [(4u8, d.major), (5u8, d.minor)] {
        if let Some(x) = n.filter(|x| *x >= 0) {
            v.push(Insn::new(JNE32_K, reg, 0, i16::MIN, x as u32 as i32));
        }
    }
    let conditional = !v.is_empty();
    v.push(Insn::new(MOV64_K, 0, 0, 0, i32::from(d.allow)));
    v.push(Insn::new(EXIT, 0, 0, 0, 0));
    let n = v.len();
    for (j, insn) in v.iter_mut().enumerate() {
        if insn.off == i16::MIN {
            insn.off = (n - j - 1) as i16;
        }
    }
    Ok((v, conditional))
}

/// Build the filter program for `rules` (validated here too).
pub fn build_program(rules: &[DeviceRule]) -> Result<Vec<Insn>, Error> {
    let mut p = vec![
        Insn::new(LDX_W, 2, 1, 0, 0),
        Insn::new(MOV64_X, 3, 2, 0, 0),
        Insn::new(AND64_K, 2, 0, 0, 0xffff),
        Insn::new(RSH64_K, 3, 0, 0, 16),
        Insn::new(LDX_W, 4, 1, 4, 0),
        Insn::new(LDX_W, 5, 1, 8, 0),
    ];
    for (i, d) in rules.iter().enumerate().rev() {
        let (b, conditional) = block(i, d)?;
        p.extend(b);
        if !conditional {
            // Nothing after an unconditional answer could run, and the verifier
            // refuses unreachable code.
            return Ok(p);
        }
    }
    p.push(Insn::new(MOV64_K, 0, 0, 0, 0));
    p.push(Insn::new(EXIT, 0, 0, 0, 0));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions the builder emits.
    fn run(p: &[Insn], ty: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | ty, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                MOV64_X => r[dst] = r[src],
                MOV64_K => r[dst] = i.imm as i64 as u64,
                AND64_K => r[dst] &= i.imm as i64 as u64,
                RSH64_K => r[dst] >>= i.imm,
                JNE32_K => {
                    if r[dst] as u32 != i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                JEQ32_K => {
                    if r[dst] as u32 == i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    /// The spec's semantics, straight: the last rule that matches decides.
    fn reference(rules: &[DeviceRule], ty: u32, access: u32, major: u32, minor: u32) -> u64 {
        let mut verdict = 0;
        for d in rules {
            let kind = d.kind.as_deref().unwrap_or("a");
            let kmatch = match kind {
                "b" => ty == 1,
                "c" => ty == 2,
                _ => true,
            };
            let nmatch = |n: Option<i64>, v: u32| n.is_none_or(|x| x < 0 || x as u32 == v);
            let acc = access_bits(d.access.as_deref().unwrap_or(""));
            let amatch = if d.allow {
                access & !acc == 0
            } else {
                access & acc != 0
            };
            if kmatch && nmatch(d.major, major) && nmatch(d.minor, minor) && amatch {
                verdict = u64::from(d.allow);
            }
        }
        verdict
    }

    fn r(
        allow: bool,
        kind: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind: Some(kind.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    #[test]
    fn program_matches_last_match_wins() {
        let sets = vec![
            vec![],
            vec![r(false, "a", None, None, "rwm")],
            vec![
                r(false, "a", None, None, "rwm"),
                r(true, "c", Some(1), Some(3), "rwm"),
                r(true, "c", Some(1), Some(5), "rw"),
                r(true, "c", Some(136), None, "rw"),
                r(false, "c", Some(1), Some(3), "w"),
                r(true, "b", Some(8), Some(0), "r"),
                r(true, "a", None, None, "m"),
            ],
            vec![
                r(true, "a", None, None, "rwm"),
                r(false, "c", Some(1), Some(9), "rwm"),
            ],
            vec![
                r(true, "c", None, None, "r"),
                r(false, "c", Some(4294967295), Some(7), "r"),
            ],
        ];
        for rules in sets {
            let p = build_program(&rules).unwrap();
            for ty in [1u32, 2] {
                for access in 1u32..8 {
                    for major in [0u32, 1, 4, 8, 136, 4294967295] {
                        for minor in [0u32, 3, 5, 7, 9] {
                            assert_eq!(
                                run(&p, ty, access, major, minor),
                                reference(&rules, ty, access, major, minor),
                                "rules {rules:?} type {ty} access {access} {major}:{minor}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unconditional_rule_ends_the_program() {
        let rules = vec![
            r(false, "a", None, None, "rwm"),
            r(true, "c", Some(1), Some(3), "rwm"),
        ];
        let p = build_program(&rules).unwrap();
        assert_eq!(p.last().unwrap().code, EXIT);
        assert_eq!(p.len(), 6 + 5 + 2);
    }

    #[test]
    fn bad_type_is_refused() {
        let e = build_program(&[r(true, "q", None, None, "r")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.devices[0].type \"q\" is not a device type"
        );
    }
}
