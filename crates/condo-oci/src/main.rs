//! `condo-oci`: the runc-compatible command line over Condo's runtime library.

mod args;
mod commands;
mod log;

use std::path::PathBuf;

use anyhow::{bail, Result};

use args::{bool_, val, Flag};

/// Options that come before the command.
pub struct Global {
    /// State root (`--root`).
    pub root: PathBuf,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `--debug`.
    pub debug: bool,
}

const GLOBAL_FLAGS: &[Flag] = &[
    val("root", None),
    val("log", None),
    val("log-format", None),
    bool_("debug", None),
    bool_("systemd-cgroup", None),
    val("criu", None),
    val("rootless", None),
    bool_("help", Some('h')),
    bool_("version", Some('v')),
];

const USAGE: &str = "usage: condo-oci [global options] command [options] [arguments]

commands: create, start, run, state, list, kill, delete, exec, ps, pause, resume,
          update, events, features, spec

global options: --root DIR (default /run/condo-oci), --log FILE, --log-format text|json,
                --debug, --systemd-cgroup, --version";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Global flags run until the first word that is not one of them.
    let mut split = argv.len();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if !a.starts_with('-') {
            split = i;
            break;
        }
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        let takes = GLOBAL_FLAGS.iter().any(|f| f.long == name && f.value);
        i += if takes && !a.contains('=') { 2 } else { 1 };
        split = i.min(argv.len());
    }
    let globals = match args::parse(&argv[..split], GLOBAL_FLAGS, false) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("condo-oci: {e}");
            std::process::exit(1);
        }
    };
    log::init(
        globals.get("log"),
        globals.get("log-format"),
        globals.has("debug"),
    );
    if globals.has("version") {
        condo_sys::process::default_sigpipe();
        println!("condo-oci version {}", env!("CARGO_PKG_VERSION"));
        println!("spec: {}", condo_runtime::state::OCI_VERSION);
        return;
    }
    let rest = &argv[split..];
    if rest.is_empty()
        || matches!(
            rest[0].as_str(),
            "state" | "list" | "ls" | "ps" | "events" | "features" | "spec" | "help"
        )
    {
        // Commands that only print end quietly when their reader goes away, as shell tools
        // do; the others keep SIGPIPE ignored so a hook that exits early cannot kill them.
        condo_sys::process::default_sigpipe();
    }
    if globals.has("help") || rest.is_empty() {
        println!("{USAGE}");
        return;
    }
    if matches!(rest[0].as_str(), "create" | "run" | "exec")
        && !condo_sys::process::running_sealed()
    {
        // Processes of the container briefly run this program's image: let them only ever
        // reach a sealed in-memory copy of it, never the file on disk (CVE-2019-5736).
        let e = condo_sys::process::exec_sealed_self();
        log::error(&format!("cannot run from a sealed copy of condo-oci: {e}"));
        std::process::exit(1);
    }
    let g = Global {
        root: PathBuf::from(globals.get("root").unwrap_or("/run/condo-oci")),
        systemd_cgroup: globals.has("systemd-cgroup"),
        debug: globals.has("debug"),
    };
    let started = std::time::Instant::now();
    log::debug(&format!(
        "{} {:?} (root {})",
        rest[0],
        &rest[1..],
        g.root.display()
    ));
    let code = match dispatch(&g, &rest[0], &rest[1..]) {
        Ok(code) => code,
        Err(e) => {
            log::error(&format!("{e:#}"));
            1
        }
    };
    log::debug(&format!(
        "{} exited {code} after {:?}",
        rest[0],
        started.elapsed()
    ));
    std::process::exit(code);
}

fn dispatch(g: &Global, cmd: &str, args: &[String]) -> Result<i32> {
    use commands::*;
    match cmd {
        "create" => create::main(g, args),
        "run" => run::main(g, args),
        "start" => start::main(g, args),
        "state" => state::main(g, args),
        "list" | "ls" => list::main(g, args),
        "kill" => kill::main(g, args),
        "delete" | "rm" => delete::main(g, args),
        "exec" => exec::main(g, args),
        "ps" => ps::main(g, args),
        "pause" => pause::main(g, args, true),
        "resume" => pause::main(g, args, false),
        "update" => update::main(g, args),
        "events" => events::main(g, args),
        "features" => features::main(g, args),
        "spec" => spec::main(g, args),
        "checkpoint" | "restore" => bail!("{cmd} is not supported by condo-oci"),
        "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command \"{other}\"\n{USAGE}"),
    }
}

/// The single container id a command takes.
pub fn one_id(pos: &[String], cmd: &str) -> Result<String> {
    match pos {
        [id] => Ok(id.clone()),
        [] => bail!("\"{cmd}\" requires a container id"),
        _ => bail!(
            "\"{cmd}\" takes exactly one container id, got {}",
            pos.len()
        ),
    }
}
