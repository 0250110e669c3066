//! The verbs: each turns its arguments into API calls and prints the answer.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Result};
use condo_api::{
    Container, ContainerUpdate, ExecCreate, ExecResult, Limits, LogLine, Stats, SystemInfo,
    WaitResult,
};

use crate::client::{enc, Client};
use crate::image::ImageCommand;
use crate::output::{ago, human, listing, parse_size, table};
use crate::run::{create, run_container};
use crate::{Cli, Command, ContextCommand, Format, SystemCommand, TemplateCommand};

/// Runs the command line; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // Verbs on the contexts file itself need no daemon.
    match cli.command {
        Command::Login {
            token_stdin,
            address,
        } => {
            let name = cli.context.as_deref().unwrap_or("default");
            let host = address
                .or(cli.host)
                .unwrap_or_else(|| crate::client::DEFAULT_HOST.to_string());
            return crate::context::login(name, &host, cli.token, token_stdin, cli.ca.as_deref());
        }
        Command::Context { command } => {
            return match command {
                ContextCommand::Ls { output } => crate::context::list(output),
                ContextCommand::Use { name } => crate::context::use_(&name),
                ContextCommand::Rm { names } => crate::context::remove(&names),
            }
        }
        _ => {}
    }
    let (host, token, ca) =
        crate::context::resolve(cli.host, cli.token, cli.context, cli.ca.as_deref())?;
    let c = Client::new(host, token, ca);
    match cli.command {
        Command::Login { .. } | Command::Context { .. } => unreachable!("handled above"),
        Command::Tenant { command } => crate::tenancy::tenant(&c, command),
        Command::User { command } => crate::tenancy::user(&c, command),
        Command::Token { command } => crate::tenancy::token(&c, command),
        Command::Audit(a) => crate::tenancy::audit(&c, a),
        Command::Run {
            detach,
            rm,
            interactive,
            tty,
            spec,
        } => {
            if interactive && !tty {
                bail!("run -i needs -t for now (an interactive container runs on a terminal)");
            }
            run_container(&c, spec, detach, rm, tty)
        }
        Command::Create { spec } => {
            let made = create(&c, spec, false, false)?;
            outln!("{}", made.id);
            Ok(0)
        }
        Command::Ps { all, quiet, output } => ps(&c, all, quiet, output),
        Command::Start { containers } => each(&containers, |r| post(&c, r, "start", "")),
        Command::Attach { container } => match crate::tty::attach(&c, &container)? {
            Some(code) => Ok(code),
            None => {
                eprintln!("\r\ndetached from {container}; it keeps running");
                Ok(0)
            }
        },
        Command::Stop {
            time,
            signal,
            containers,
        } => {
            let mut q = Vec::new();
            if let Some(t) = time {
                q.push(format!("timeout={t}"));
            }
            if let Some(s) = signal {
                q.push(format!("signal={}", enc(&s)));
            }
            each(&containers, |r| post(&c, r, "stop", &q.join("&")))
        }
        Command::Restart { time, containers } => {
            let q = time.map(|t| format!("timeout={t}")).unwrap_or_default();
            each(&containers, |r| post(&c, r, "restart", &q))
        }
        Command::Kill { signal, containers } => each(&containers, |r| {
            post(&c, r, "kill", &format!("signal={}", enc(&signal)))
        }),
        Command::Pause { containers } => each(&containers, |r| post(&c, r, "pause", "")),
        Command::Resume { containers } => each(&containers, |r| post(&c, r, "resume", "")),
        Command::Rm { force, containers } => each(&containers, |r| {
            c.empty(
                "DELETE",
                &format!(
                    "/v1/containers/{}{}",
                    enc(r),
                    if force { "?force=true" } else { "" }
                ),
            )
        }),
        Command::Rename { container, name } => {
            let _: Container = c.json(
                "POST",
                &format!("/v1/containers/{}/rename", enc(&container)),
                Some(&serde_json::json!({"name": name})),
            )?;
            Ok(0)
        }
        Command::Rebase {
            container,
            template,
            params,
            timeout,
        } => {
            let mut p = serde_json::Map::new();
            for kv in &params {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--param {kv}: use NAME=VALUE"))?;
                p.insert(k.to_string(), v.into());
            }
            let body = serde_json::json!({"template": template, "params": p, "timeout": timeout});
            let after: Container = c.json(
                "POST",
                &format!("/v1/containers/{}/rebase", enc(&container)),
                Some(&body),
            )?;
            outln!(
                "{} now runs {}",
                after.name,
                after.config.template.unwrap_or_default()
            );
            Ok(0)
        }
        Command::Update {
            memory,
            cpus,
            pids_limit,
            restart,
            rate,
            rate_in,
            rate_out,
            no_rate,
            container,
        } => {
            let given = rate.is_some() || rate_in.is_some() || rate_out.is_some();
            let rate = (given || no_rate)
                .then(|| {
                    crate::network::rates(rate.as_deref(), rate_in.as_deref(), rate_out.as_deref())
                })
                .transpose()?;
            let u = ContainerUpdate {
                rate,
                limits: Limits {
                    memory: memory
                        .map(|m| parse_size(&m))
                        .transpose()
                        .map_err(anyhow::Error::msg)?,
                    cpus,
                    pids: pids_limit,
                    disk: None,
                },
                restart: restart
                    .map(|r| r.parse())
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
            };
            let _: Container = c.json(
                "POST",
                &format!("/v1/containers/{}/update", enc(&container)),
                Some(&u),
            )?;
            outln!("{container}");
            Ok(0)
        }
        Command::Exec {
            interactive,
            tty,
            env,
            workdir,
            user,
            container,
            command,
        } => {
            let x = ExecCreate {
                command,
                env,
                workdir,
                user,
                tty,
                size: None,
            };
            if tty || interactive {
                if !tty {
                    bail!("exec -i needs -t for now (an interactive exec runs on a terminal)");
                }
                return crate::tty::exec(&c, &container, x);
            }
            let r: ExecResult = c.json(
                "POST",
                &format!("/v1/containers/{}/exec", enc(&container)),
                Some(&x),
            )?;
            out!("{}", r.stdout);
            eprint!("{}", r.stderr);
            Ok(r.exit_code)
        }
        Command::Logs {
            follow,
            tail,
            since,
            timestamps,
            container,
        } => {
            logs(&c, &container, follow, tail, since.as_deref(), timestamps)?;
            Ok(0)
        }
        Command::Stats {
            no_stream,
            output,
            containers,
        } => stats(&c, containers, no_stream, output),
        Command::Inspect { containers } => inspect::<Container>(&c, "/v1/containers", &containers),
        Command::Wait { containers } => each(&containers, |r| {
            let w: WaitResult = c.json(
                "POST",
                &format!("/v1/containers/{}/wait", enc(r)),
                None::<&()>,
            )?;
            outln!("{}", w.exit_code);
            Ok(())
        }),
        Command::Events { since, no_follow } => {
            let mut q = vec![format!("follow={}", !no_follow)];
            if let Some(s) = since {
                q.push(format!("since={s}"));
            }
            c.lines::<serde_json::Value>(&format!("/v1/events?{}", q.join("&")), |e| {
                outln!("{e}");
                Ok(true)
            })?;
            Ok(0)
        }
        Command::Pull(a)
        | Command::Image {
            command: ImageCommand::Pull(a),
        } => crate::image::pull(&c, &a.reference, a.plain_http.then_some(true)),
        Command::Import(a)
        | Command::Image {
            command: ImageCommand::Import(a),
        } => crate::image::import(&c, &a.file, a.name.as_deref()),
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => crate::image::images(&c, a.output, a.quiet),
        Command::Image {
            command: ImageCommand::Inspect { images },
        } => crate::image::inspect(&c, &images),
        Command::Image {
            command: ImageCommand::Prune { all, force, output },
        } => crate::image::prune(&c, all, force, output),
        Command::Save(a)
        | Command::Image {
            command: ImageCommand::Export(a),
        } => crate::image::export(&c, &a.image, a.output.as_deref()),
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => each(&a.images, |i| {
            let of = a
                .tenant
                .as_ref()
                .map(|t| format!("?tenant={}", enc(t)))
                .unwrap_or_default();
            c.empty("DELETE", &format!("/v1/images/{}{of}", enc(i)))?;
            outln!("{i}");
            Ok(())
        }),
        Command::Volume { command } => crate::volume::run(&c, command),
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "condo", &mut std::io::stdout());
            Ok(0)
        }
        Command::Template {
            command: TemplateCommand::Build { template, verbose },
        } => crate::storage::build(&c, &template, verbose),
        Command::Templates { output }
        | Command::Template {
            command: TemplateCommand::Ls { output },
        } => crate::storage::templates(&c, output),
        Command::Template {
            command: TemplateCommand::Show { template },
        } => {
            let t: serde_json::Value = c.json(
                "GET",
                &format!("/v1/templates/{}", enc(&template)),
                None::<&()>,
            )?;
            outln!("{}", serde_json::to_string_pretty(&t)?);
            Ok(0)
        }
        Command::Template {
            command: TemplateCommand::Rm { templates },
        } => each(&templates, |t| {
            c.empty("DELETE", &format!("/v1/templates/{}", enc(t)))?;
            outln!("{t}");
            Ok(())
        }),
        Command::Snapshot { command } => crate::storage::snapshot(&c, command),
        Command::Network { command } => crate::network::run(&c, command),
        Command::System {
            command: SystemCommand::Info { output },
        } => {
            let i: SystemInfo = c.json("GET", "/v1/system/info", None::<&()>)?;
            if output == Format::Json {
                outln!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                outln!("Version:     {} (API {})", i.version, i.api_version);
                outln!("Root:        {}", i.root);
                outln!(
                    "Host:        {} (kernel {}, cgroup {})",
                    i.hostname,
                    i.kernel,
                    i.cgroup
                );
                outln!(
                    "Resources:   {} CPUs, {} memory",
                    i.cpus,
                    human(i.memory_bytes)
                );
                let k = &i.containers;
                outln!(
                    "Containers:  {} ({} running, {} paused, {} stopped)",
                    k.total,
                    k.running,
                    k.paused,
                    k.stopped
                );
                outln!("Uptime:      {} s", i.uptime_seconds);
            }
            Ok(0)
        }
        Command::Version { output } => {
            let client = env!("CARGO_PKG_VERSION");
            let info = c.json::<SystemInfo>("GET", "/v1/system/info", None::<&()>);
            if output == Format::Json {
                let server = info.as_ref().ok().map(
                    |i| serde_json::json!({"version": i.version, "api_version": i.api_version}),
                );
                let v = serde_json::json!({"client": {"version": client}, "server": server});
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("Client:  {client}");
                if let Ok(i) = &info {
                    outln!("Server:  {} (API {})", i.version, i.api_version);
                }
            }
            info.map(|_| 0)
        }
        Command::System {
            command: SystemCommand::Whoami,
        } => {
            let p: serde_json::Value = c.json("GET", "/v1/whoami", None::<&()>)?;
            outln!("{}", serde_json::to_string_pretty(&p)?);
            Ok(0)
        }
    }
}

/// Prints the JSON of every resource `base/REF` as one array.
pub(crate) fn inspect<T: serde::de::DeserializeOwned + serde::Serialize>(
    c: &Client,
    base: &str,
    refs: &[String],
) -> Result<i32> {
    let mut all = Vec::new();
    for r in refs {
        all.push(c.json::<T>("GET", &format!("{base}/{}", enc(r)), None::<&()>)?);
    }
    outln!("{}", serde_json::to_string_pretty(&all)?);
    Ok(0)
}

/// Applies `f` to each container; with several, names the ones that failed and exits 1.
pub(crate) fn each(refs: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    if let [one] = refs {
        f(one)?;
        return Ok(0);
    }
    let mut code = 0;
    for r in refs {
        if let Err(e) = f(r) {
            eprintln!("condo: {r}: {e:#}");
            code = 1;
        }
    }
    Ok(code)
}

fn post(c: &Client, r: &str, verb: &str, query: &str) -> Result<()> {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let _: Container = c.json(
        "POST",
        &format!("/v1/containers/{}/{verb}{q}", enc(r)),
        None::<&()>,
    )?;
    outln!("{r}");
    Ok(())
}

pub(crate) fn logs(
    c: &Client,
    r: &str,
    follow: bool,
    tail: Option<u64>,
    since: Option<&str>,
    timestamps: bool,
) -> Result<()> {
    let mut q = vec![format!("follow={follow}")];
    if let Some(t) = tail {
        q.push(format!("tail={t}"));
    }
    if let Some(s) = since {
        q.push(format!("since={}", enc(s)));
    }
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    c.lines::<LogLine>(
        &format!("/v1/containers/{}/logs?{}", enc(r), q.join("&")),
        |l| {
            let w: &mut dyn Write = if l.stream == "stderr" {
                &mut err
            } else {
                &mut out
            };
            let r = if timestamps {
                writeln!(w, "{} {}", l.time, l.line)
            } else {
                writeln!(w, "{}", l.line)
            };
            Ok(r.and_then(|_| w.flush()).is_ok())
        },
    )
}

fn ps(c: &Client, all: bool, quiet: bool, output: Format) -> Result<i32> {
    let list: Vec<Container> = c.json("GET", &format!("/v1/containers?all={all}"), None::<&()>)?;
    let header = [
        "ID",
        "NAME",
        "IMAGE/ROOTFS",
        "COMMAND",
        "STATE",
        "CREATED",
        "RESTART",
    ];
    listing(
        &list,
        output,
        quiet,
        |x| x.id.clone(),
        &header,
        |x| {
            let status = match (x.state, x.exit_code) {
                (condo_api::ContainerState::Stopped, Some(code)) => format!("stopped ({code})"),
                (s, _) => match &x.health {
                    Some(h) if x.state.is_live() => format!("{s} ({})", h.status),
                    _ => s.to_string(),
                },
            };
            let source = x
                .config
                .image
                .clone()
                .or(x.config.template.as_ref().map(|t| format!("template:{t}")))
                .or(x.config.rootfs.clone())
                .unwrap_or_default();
            vec![
                x.id.clone(),
                x.name.clone(),
                source,
                x.config.command.join(" "),
                status,
                ago(&x.created_at),
                x.config.restart.to_string(),
            ]
        },
    )
}

fn stats(c: &Client, names: Vec<String>, no_stream: bool, output: Format) -> Result<i32> {
    loop {
        let targets: Vec<String> = if names.is_empty() {
            c.json::<Vec<Container>>("GET", "/v1/containers", None::<&()>)?
                .into_iter()
                .map(|x| x.id)
                .collect()
        } else {
            names.clone()
        };
        let mut samples = Vec::new();
        for t in &targets {
            match c.json::<Stats>(
                "GET",
                &format!("/v1/containers/{}/stats", enc(t)),
                None::<&()>,
            ) {
                Ok(s) => samples.push(s),
                Err(e) if !names.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        if output == Format::Json {
            outln!("{}", serde_json::to_string(&samples)?);
        } else {
            // A terminal shows one table that updates in place; a pipe gets one table a second.
            if !no_stream && std::io::stdout().is_terminal() {
                out!("\x1b[2J\x1b[H");
            }
            let rows: Vec<Vec<String>> = samples
                .iter()
                .map(|s| {
                    let lim = if s.memory_limit == 0 {
                        "-".into()
                    } else {
                        human(s.memory_limit)
                    };
                    vec![
                        s.id.clone(),
                        s.name.clone(),
                        format!("{:.2}%", s.cpu_percent),
                        format!("{} / {lim}", human(s.memory_bytes)),
                        s.pids.to_string(),
                        format!("{} / {}", human(s.io_read_bytes), human(s.io_write_bytes)),
                        format!("{} / {}", human(s.net_rx_bytes), human(s.net_tx_bytes)),
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "NAME",
                    "CPU",
                    "MEMORY",
                    "PIDS",
                    "BLOCK I/O",
                    "NET I/O",
                ],
                &rows,
            );
        }
        if no_stream {
            return Ok(0);
        }
        crate::output::to_stdout(std::io::stdout().flush())?;
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
