//! `create`: set a container up; its program waits for `start`.

use std::path::PathBuf;

use anyhow::Result;
use condo_runtime::create::CreateOptions;

use crate::args::{bool_, parse, val, Flag, Parsed};
use crate::Global;

/// Flags of `create` (shared by `run`).
pub const FLAGS: &[Flag] = &[
    val("bundle", Some('b')),
    val("console-socket", None),
    val("pidfd-socket", None),
    val("pid-file", None),
    bool_("no-pivot", None),
    bool_("no-new-keyring", None),
    val("preserve-fds", None),
    bool_("detach", Some('d')),
    bool_("keep", None),
    bool_("no-subreaper", None),
];

/// Builds the runtime's options from parsed flags.
pub fn options(g: &Global, p: &Parsed, cmd: &str) -> Result<CreateOptions> {
    let id = crate::one_id(&p.pos, cmd)?;
    let bundle = match p.get("bundle") {
        Some(b) => PathBuf::from(b),
        None => std::env::current_dir()?,
    };
    Ok(CreateOptions {
        root: g.root.clone(),
        id,
        bundle,
        pid_file: p.get("pid-file").map(PathBuf::from),
        console_socket: p.get("console-socket").map(PathBuf::from),
        no_pivot: p.has("no-pivot"),
        no_new_keyring: p.has("no-new-keyring"),
        preserve_fds: p.num("preserve-fds")?.unwrap_or(0),
        systemd_cgroup: g.systemd_cgroup,
        pidfd_socket: p.get("pidfd-socket").map(PathBuf::from),
    })
}

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, FLAGS, false)?;
    let opts = options(g, &p, "create")?;
    let c = condo_runtime::create::create(&opts, false)?;
    for w in &c.warnings {
        crate::log::warn(w);
    }
    Ok(0)
}
