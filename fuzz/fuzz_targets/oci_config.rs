//! config.json as a bundle author writes it: parsed, planned and checked the way `create`
//! does before it touches the system, and every sub-parser `create` runs later (seccomp,
//! capabilities, rlimits, mount options, cgroup resources) run on the same document.
//!
//! Checks: no panic, no hang; a parsed spec serializes and parses back.
#![no_main]

use condo_runtime::{caps, create, mountopts, ns, rlimits, seccomp, state, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = create::parse_spec(data) else {
        return;
    };

    // What we accept we must be able to write back (state.json keeps the spec).
    let again = serde_json::to_vec(&spec).expect("a parsed spec serializes");
    create::parse_spec(&again).expect("a serialized spec parses again");

    let linux = spec.linux();
    // A namespace path is opened by from_spec: keep the harness off the host's files.
    let joins = linux
        .namespaces
        .iter()
        .any(|n| n.path.as_deref().is_some_and(|p| !p.is_empty()));
    if !joins {
        if let Ok(plan) = ns::Plan::from_spec(&linux) {
            let _ = plan.clone_flags();
            let _ = validate::spec(&spec, &plan);
        }
    }

    if let Some(s) = &linux.seccomp {
        if let Ok(prog) = seccomp::compile(s) {
            let _ = (prog.instruction_count(), prog.flags(), prog.has_notify());
        }
    }
    if let Some(r) = &linux.resources {
        let _ = r.validate();
    }
    if let Some(p) = &spec.process {
        let _ = validate::process_fields(p, "process", "config.json");
        if let Some(c) = &p.capabilities {
            let _ = caps::parse(c);
        }
        let _ = rlimits::parse(&p.rlimits);
    }
    for m in &spec.mounts {
        let _ = mountopts::Options::parse(&m.options);
    }
    // Container ids come from the same hands as the bundle: an id that passes must be one
    // path component.
    if let Some(h) = &spec.hostname {
        if state::check_id(h).is_ok() {
            assert!(!h.contains('/') && h != "." && h != ".." && !h.is_empty());
        }
    }
});
