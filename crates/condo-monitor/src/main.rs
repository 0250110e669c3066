//! `condo-monitor`: the small process that stands beside one container.
//!
//! `condo-monitor run` creates and starts the container through the runtime library, holds its
//! stdio, writes its logs, reaps it and records its exit status; it detaches from `condod` so the
//! container outlives any daemon crash or upgrade. `condo-monitor exec` is a short-lived helper
//! that runs one more process inside a running container, `condo-monitor delete` removes the
//! runtime's state of an ended one. No async runtime, no threads: one poll loop, which runs in
//! the small `condo-monitor-watch` executable (src/bin) once the container is started.

mod exec;
mod run;

use std::path::PathBuf;

/// Options shared by the subcommands, parsed by hand to keep the binary small.
#[derive(Debug, Default)]
pub struct Args {
    /// The runtime library's state root.
    pub runtime_root: PathBuf,
    /// The runtime container id.
    pub id: String,
    /// Bundle directory (`run`).
    pub bundle: PathBuf,
    /// The monitor's own directory: logs, exit file, pid file (`run`).
    pub dir: PathBuf,
    /// Largest size of one log file before it rotates, bytes.
    pub log_max: u64,
    /// Rotated log files to keep beside the current one.
    pub log_keep: u32,
    /// `exec`: relay a terminal with framed input instead of collecting output.
    pub tty: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        log_max: 10 << 20,
        log_keep: 2,
        ..Default::default()
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{k} needs a value"))
        };
        match k.as_str() {
            "--runtime-root" => a.runtime_root = PathBuf::from(v()?),
            "--id" => a.id = v()?,
            "--bundle" => a.bundle = PathBuf::from(v()?),
            "--dir" => a.dir = PathBuf::from(v()?),
            "--log-max" => {
                a.log_max = v()?
                    .parse()
                    .map_err(|_| "--log-max: not a number".to_string())?
            }
            "--log-keep" => {
                a.log_keep = v()?
                    .parse()
                    .map_err(|_| "--log-keep: not a number".to_string())?
            }
            "--tty" => a.tty = true,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.id.is_empty() || a.runtime_root.as_os_str().is_empty() {
        return Err("--runtime-root and --id are required".into());
    }
    Ok(a)
}

/// Called as `condo-build-step ROOT ID BUNDLE` (condod links this name to the monitor when the
/// template library's helper is not installed): runs one build step's container to its end
/// and exits with its status, from this single-threaded process.
fn build_step(argv: &[String]) -> i32 {
    let [root, id, bundle] = argv else {
        eprintln!("usage: condo-build-step ROOT ID BUNDLE");
        return 2;
    };
    let opts = condo_runtime::create::CreateOptions {
        root: root.into(),
        id: id.clone(),
        bundle: bundle.into(),
        ..Default::default()
    };
    match condo_runtime::run::run(&opts, false) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("condo-build-step: {e}");
            125
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let called = std::env::args().next().unwrap_or_default();
    if called.rsplit('/').next() == Some("condo-build-step") {
        std::process::exit(build_step(&argv));
    }
    let (cmd, rest) = match argv.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("", &argv[..]),
    };
    let args = match parse(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("condo-monitor: {e}");
            std::process::exit(2);
        }
    };
    let code = match cmd {
        "run" => run::main(&args),
        "exec" => exec::main(&args),
        "delete" => match condo_runtime::delete::delete(&args.runtime_root, &args.id, true) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("condo-monitor delete: {e}");
                1
            }
        },
        _ => {
            eprintln!("usage: condo-monitor run|exec|delete --runtime-root DIR --id ID [options]");
            2
        }
    };
    std::process::exit(code);
}
