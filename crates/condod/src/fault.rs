//! Crash injection, for the tests that prove reconciliation: started with `--fault STEP` (or
//! `CONDOD_FAULT=STEP`), condod aborts the moment an operation reaches that step, as a crash
//! or a `kill -9` there would stop it. Without the option every point is a no-op.

use std::sync::OnceLock;

/// The steps that can be named, in the order of the operations they belong to.
pub const STEPS: &[&str] = &[
    "create.dir",
    "create.instance",
    "create.row",
    "start.monitor",
    "snapshot.frozen",
    "snapshot.unmounted",
    "snapshot.taken",
    "clone.instance",
    "delete.stopped",
    "delete.runtime",
    "delete.row",
    "delete.unmounted",
];

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Arms the point named `step` (once, at start); an unknown name is refused.
pub fn arm(step: Option<String>) -> anyhow::Result<()> {
    if let Some(s) = &step {
        if !STEPS.contains(&s.as_str()) {
            anyhow::bail!("--fault {s}: not a step (one of {})", STEPS.join(", "));
        }
        tracing::warn!("crash injection armed at {s}");
    }
    let _ = ARMED.set(step);
    Ok(())
}

/// Aborts the daemon if `step` is the armed one.
pub fn point(step: &str) {
    if matches!(ARMED.get(), Some(Some(s)) if s == step) {
        tracing::error!("crash injected at {step}");
        std::process::abort();
    }
}
