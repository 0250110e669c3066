//! Classic BPF code generation for seccomp filters.
//!
//! The program is written backwards, so that every jump target already exists when the jump
//! is written and its distance is known; a conditional jump farther than 255 instructions goes
//! through an unconditional `ja` placed right after it.

use super::arch::{Arch, X32_BIT};

const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub(super) const JEQ: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub(super) const JGT: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub(super) const JGE: u16 = 0x35;
const RET_K: u16 = 0x06;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// How an argument is compared (`SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument condition of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cond {
    pub index: u32,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// A rule reduced to what code generation needs: the return value and the conditions (all
/// of which must hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Rule {
    pub ret: u32,
    pub conds: Vec<Cond>,
}

/// What a range of syscall numbers leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Leaf {
    /// Return this value.
    Ret(u32),
    /// Try the rules `start..end` of the arch's rule list in order, then return the default.
    Rules(usize, usize),
}

/// The decision for one arch: sorted, non-overlapping ranges of syscall numbers, each starting
/// at `.0` and running to the next start, and the rules the `Leaf::Rules` point into.
#[derive(Debug, Default)]
pub(super) struct ArchPlan {
    pub ranges: Vec<(u32, Leaf)>,
    pub rules: Vec<Rule>,
}

type Label = usize;

/// A program under construction, held in reverse order.
pub(super) struct Emitter {
    rev: Vec<libc::sock_filter>,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Emitter {
    pub(super) fn new() -> Emitter {
        Emitter {
            rev: Vec::with_capacity(512),
        }
    }

    fn push(&mut self, i: libc::sock_filter) -> Label {
        self.rev.push(i);
        self.rev.len() - 1
    }

    /// Distance from the instruction about to be written to `target`.
    fn dist(&self, target: Label) -> usize {
        self.rev.len() - target - 1
    }

    fn ret(&mut self, k: u32) -> Label {
        self.push(insn(RET_K, 0, 0, k))
    }

    fn load(&mut self, off: u32) -> Label {
        self.push(insn(LD_W_ABS, 0, 0, off))
    }

    fn and(&mut self, k: u32) -> Label {
        self.push(insn(ALU_AND_K, 0, 0, k))
    }

    /// Makes the next instruction written fall through to `t`.
    fn goto(&mut self, t: Label) -> Label {
        if self.dist(t) == 0 {
            t
        } else {
            let d = self.dist(t) as u32;
            self.push(insn(JA, 0, 0, d))
        }
    }

    /// A conditional jump: to `t` when `A op k` holds, else to `f`.
    fn jump(&mut self, op: u16, k: u32, mut t: Label, mut f: Label) -> Label {
        if t == f {
            return self.goto(t);
        }
        if self.dist(t) > 255 {
            let d = self.dist(t) as u32;
            t = self.push(insn(JA, 0, 0, d));
        }
        if self.dist(f) > 255 {
            let d = self.dist(f) as u32;
            f = self.push(insn(JA, 0, 0, d));
        }
        let (dt, df) = (self.dist(t) as u8, self.dist(f) as u8);
        self.push(insn(op, dt, df, k))
    }

    /// The finished program, in execution order.
    pub(super) fn finish(mut self) -> Vec<libc::sock_filter> {
        self.rev.reverse();
        self.rev
    }

    /// Code checking one 32-bit half of an argument: `A op k` → `t`, else `f`.
    fn half(&mut self, off: u32, mask: Option<u32>, op: u16, k: u32, t: Label, f: Label) -> Label {
        self.jump(op, k, t, f);
        if let Some(m) = mask {
            self.and(m);
        }
        self.load(off)
    }

    /// Code testing `cond`, going to `t` when it holds and to `f` when not.
    fn cond(&mut self, c: &Cond, narrow: bool, t: Label, f: Label) -> Label {
        let lo_first = cfg!(target_endian = "little");
        let base = OFF_ARGS + 8 * c.index;
        let (lo_off, hi_off) = if lo_first {
            (base, base + 4)
        } else {
            (base + 4, base)
        };
        let (v, v2) = (c.value, c.value_two);
        let (vhi, vlo) = ((v >> 32) as u32, v as u32);
        match c.op {
            Op::Eq | Op::Ne => {
                let (t, f) = if c.op == Op::Eq { (t, f) } else { (f, t) };
                let lo = self.half(lo_off, None, JEQ, vlo, t, f);
                if narrow {
                    return lo;
                }
                self.half(hi_off, None, JEQ, vhi, lo, f)
            }
            Op::MaskedEq => {
                let m = v;
                let lo = self.half(lo_off, Some(m as u32), JEQ, (v2 & m) as u32, t, f);
                if narrow {
                    return lo;
                }
                self.half(
                    hi_off,
                    Some((m >> 32) as u32),
                    JEQ,
                    ((v2 & m) >> 32) as u32,
                    lo,
                    f,
                )
            }
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                // a < v is !(a >= v), a <= v is !(a > v).
                let (strict, t, f) = match c.op {
                    Op::Gt => (true, t, f),
                    Op::Ge => (false, t, f),
                    Op::Lt => (false, f, t),
                    _ => (true, f, t),
                };
                let lo = self.half(lo_off, None, if strict { JGT } else { JGE }, vlo, t, f);
                if narrow {
                    return lo;
                }
                let eq = self.jump(JEQ, vhi, lo, f);
                self.jump(JGT, vhi, t, eq);
                self.load(hi_off)
            }
        }
    }

    /// Code for the rules of one leaf, returning `default` when none matches.
    fn rules(&mut self, rules: &[Rule], narrow: bool, default: u32) -> Label {
        let mut next = self.ret(default);
        for r in rules.iter().rev() {
            let mut ok = self.ret(r.ret);
            for c in r.conds.iter().rev() {
                ok = self.cond(c, narrow, ok, next);
            }
            next = ok;
        }
        next
    }

    /// A binary search over `ranges` on the syscall number held in A.
    fn tree(
        &mut self,
        plan: &ArchPlan,
        ranges: &[(u32, Leaf)],
        narrow: bool,
        default: u32,
    ) -> Label {
        if let [(_, leaf)] = ranges {
            return match *leaf {
                Leaf::Ret(k) => self.ret(k),
                Leaf::Rules(s, e) => self.rules(&plan.rules[s..e], narrow, default),
            };
        }
        let mid = ranges.len() / 2;
        let right = self.tree(plan, &ranges[mid..], narrow, default);
        let left = self.tree(plan, &ranges[..mid], narrow, default);
        self.jump(JGE, ranges[mid].0, right, left)
    }

    /// Code for one arch plan, starting with the syscall number load.
    fn arch_block(&mut self, plan: &ArchPlan, arch: Arch, default: u32) -> Label {
        self.tree(plan, &plan.ranges, arch.narrow, default)
    }

    /// The whole filter: dispatch on `seccomp_data.arch`, then one search per arch.
    ///
    /// x86-64 and x32 share one audit arch and are told apart by [`X32_BIT`].
    pub(super) fn program(&mut self, plans: &[(Arch, ArchPlan)], default: u32, bad_arch: u32) {
        let mut entries: Vec<(u32, Label)> = Vec::new();
        let x32 = plans.iter().position(|(a, _)| a.name == "SCMP_ARCH_X32");
        let x64 = plans.iter().position(|(a, _)| a.name == "SCMP_ARCH_X86_64");
        for (i, (arch, plan)) in plans.iter().enumerate().rev() {
            if Some(i) == x32 && x64.is_some() {
                continue;
            }
            if Some(i) == x64 {
                let high = match x32 {
                    Some(j) => self.arch_block(&plans[j].1, plans[j].0, default),
                    None => self.ret(bad_arch),
                };
                let low = self.arch_block(plan, *arch, default);
                self.jump(JGE, X32_BIT, high, low);
            } else if Some(i) == x32 {
                let bad = self.ret(bad_arch);
                let high = self.arch_block(plan, *arch, default);
                self.jump(JGE, X32_BIT, high, bad);
            } else {
                self.arch_block(plan, *arch, default);
            }
            self.load(OFF_NR);
            entries.push((arch.audit, self.rev.len() - 1));
        }
        let mut next = self.ret(bad_arch);
        for &(audit, label) in &entries {
            next = self.jump(JEQ, audit, label, next);
        }
        self.load(OFF_ARCH);
    }
}
