//! `linux.resources` / `update --resources` JSON: parsed, validated against this host, and
//! its device rules compiled to the cgroup v2 device program.
//!
//! Checks: no panic, no hang, no runaway allocation; parsed resources round-trip through
//! JSON unchanged; a device program is never empty and ends in an exit.
#![no_main]

use condo_cgroups::{devices, Resources};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Resources::from_json(text) else {
        return;
    };
    let again = serde_json::to_string(&r).expect("parsed resources serialize");
    let back = Resources::from_json(&again).expect("serialized resources parse again");
    assert_eq!(r, back, "resources change across a JSON round trip");

    let _ = r.validate();
    if let Some(rules) = &r.devices {
        if let Ok(prog) = devices::build_program(rules) {
            check_program(&prog);
        }
    }
});

/// The kernel verifier's first demands: ends in exit, every jump lands inside the program.
fn check_program(prog: &[condo_sys::bpf::Insn]) {
    const EXIT: u8 = 0x95;
    let last = prog.last().expect("a device program is never empty");
    assert_eq!(last.code, EXIT, "a device program ends in exit");
    for (k, insn) in prog.iter().enumerate() {
        // BPF_JMP32 / BPF_JMP class with a conditional op: code & 7 in {5, 6}, op not exit/call.
        let class = insn.code & 0x07;
        let op = insn.code & 0xf0;
        if (class == 0x05 || class == 0x06) && op != 0x90 && op != 0x80 {
            let to = k as i64 + 1 + i64::from(insn.off);
            assert!(
                (0..prog.len() as i64).contains(&to) && to > k as i64,
                "jump at {k} (off {}) leaves a {}-instruction program",
                insn.off,
                prog.len()
            );
        }
    }
}
