//! `exec`: run a process in a running container.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use condo_runtime::container::Container;
use condo_runtime::exec::ExecOptions;
use condo_runtime::spec::Process;

use crate::args::{bool_, parse, val, Flag};
use crate::Global;

const FLAGS: &[Flag] = &[
    val("console-socket", None),
    val("pidfd-socket", None),
    val("cwd", None),
    val("env", Some('e')),
    bool_("tty", Some('t')),
    val("user", Some('u')),
    val("additional-gids", Some('g')),
    val("process", Some('p')),
    bool_("detach", Some('d')),
    val("pid-file", None),
    val("process-label", None),
    val("apparmor", None),
    bool_("no-new-privs", None),
    val("cap", Some('c')),
    val("preserve-fds", None),
    val("cgroup", None),
    bool_("ignore-paused", None),
];

/// Runs the command.
pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse(args, FLAGS, true)?;
    let Some(id) = p.pos.first().cloned() else {
        bail!("\"exec\" requires a container id")
    };
    let process = match p.get("process") {
        Some(file) => {
            let raw = std::fs::read(file).with_context(|| format!("--process {file}"))?;
            let de = &mut serde_json::Deserializer::from_slice(&raw);
            let mut proc_: Process = serde_path_to_error::deserialize(de).map_err(|e| {
                anyhow::anyhow!("invalid process.json: {}: {}", e.path(), e.inner())
            })?;
            if p.has("tty") {
                proc_.terminal = true;
            }
            proc_
        }
        None => {
            if p.pos.len() < 2 {
                bail!("\"exec\" requires a command (or --process FILE)");
            }
            let c = Container::load(&g.root, &id)?;
            let mut proc_ = c.spec()?.process.unwrap_or_default();
            proc_.args = p.pos[1..].to_vec();
            proc_.terminal = p.has("tty");
            proc_.console_size = None;
            proc_
        }
    };
    let mut process = process;
    if let Some(cwd) = p.get("cwd") {
        process.cwd = cwd.to_string();
    }
    for e in p.all("env") {
        let key = e.split('=').next().unwrap_or("").to_string();
        process
            .env
            .retain(|x| x.split('=').next() != Some(key.as_str()));
        process.env.push(e);
    }
    if let Some(u) = p.get("user") {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u, None),
        };
        process.user.uid = uid
            .parse()
            .with_context(|| format!("--user {u:?}: expected UID[:GID]"))?;
        if let Some(gid) = gid {
            process.user.gid = gid
                .parse()
                .with_context(|| format!("--user {u:?}: expected UID[:GID]"))?;
        }
    }
    for g in p.all("additional-gids") {
        process.user.additional_gids.push(
            g.parse()
                .with_context(|| format!("--additional-gids {g:?}"))?,
        );
    }
    if p.has("no-new-privs") {
        process.no_new_privileges = true;
    }
    let added = p.all("cap");
    if !added.is_empty() {
        let caps = process.capabilities.get_or_insert_with(Default::default);
        for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
            let v = set.get_or_insert_with(Vec::new);
            for c in &added {
                if !v.contains(c) {
                    v.push(c.clone());
                }
            }
        }
    }
    let opts = ExecOptions {
        root: g.root.clone(),
        id,
        process,
        console_socket: p.get("console-socket").map(PathBuf::from),
        pid_file: p.get("pid-file").map(PathBuf::from),
        detach: p.has("detach"),
        preserve_fds: p.num("preserve-fds")?.unwrap_or(0),
        ignore_paused: p.has("ignore-paused"),
        pidfd_socket: p.get("pidfd-socket").map(PathBuf::from),
    };
    Ok(condo_runtime::exec::exec(&opts)?)
}
