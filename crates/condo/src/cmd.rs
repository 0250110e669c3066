//! The verbs: each turns its arguments into API calls and prints the answer.

use std::io::Write;

use anyhow::{bail, Result};
use condo_api::{
    Container, ContainerCreate, ContainerUpdate, ExecCreate, ExecResult, Limits, LogLine, Stats,
    SystemInfo, WaitResult,
};

use crate::client::{enc, Client};
use crate::output::{ago, human, parse_size, table};
use crate::{
    Cli, Command, ContextCommand, CreateArgs, Format, ImageCommand, SystemCommand, TemplateCommand,
};

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
            return crate::context::login(name, &host, cli.token, token_stdin);
        }
        Command::Context { command } => {
            return match command {
                ContextCommand::Ls => crate::context::list(),
                ContextCommand::Use { name } => crate::context::use_(&name),
                ContextCommand::Rm { names } => crate::context::remove(&names),
            }
        }
        _ => {}
    }
    let (host, token) = crate::context::resolve(cli.host, cli.token, cli.context)?;
    let c = Client::new(host, token);
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
            if tty && detach {
                bail!("run -d -t is not available yet: run -d, then exec -it");
            }
            run_container(&c, spec, detach, rm, tty)
        }
        Command::Create { spec } => {
            let made: Container =
                c.json("POST", "/v1/containers", Some(&create_body(spec, false)?))?;
            println!("{}", made.id);
            Ok(0)
        }
        Command::Ps { all, quiet, output } => ps(&c, all, quiet, output),
        Command::Start { containers } => each(&containers, |r| post(&c, r, "start", "")),
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
        Command::Update {
            memory,
            cpus,
            pids_limit,
            restart,
            container,
        } => {
            let u = ContainerUpdate {
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
            println!("{container}");
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
            print!("{}", r.stdout);
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
        Command::Inspect { containers } => {
            let mut all = Vec::new();
            for r in &containers {
                all.push(c.json::<Container>(
                    "GET",
                    &format!("/v1/containers/{}", enc(r)),
                    None::<&()>,
                )?);
            }
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(0)
        }
        Command::Wait { containers } => each(&containers, |r| {
            let w: WaitResult = c.json(
                "POST",
                &format!("/v1/containers/{}/wait", enc(r)),
                None::<&()>,
            )?;
            println!("{}", w.exit_code);
            Ok(())
        }),
        Command::Events { since, no_follow } => {
            let mut q = vec![format!("follow={}", !no_follow)];
            if let Some(s) = since {
                q.push(format!("since={s}"));
            }
            c.lines::<serde_json::Value>(&format!("/v1/events?{}", q.join("&")), |e| {
                println!("{e}");
                Ok(true)
            })?;
            Ok(0)
        }
        Command::Import { file, name }
        | Command::Image {
            command: ImageCommand::Import { file, name },
        } => crate::storage::import(&c, &file, name.as_deref()),
        Command::Images { output }
        | Command::Image {
            command: ImageCommand::Ls { output },
        } => crate::storage::images(&c, output),
        Command::Save { image, output }
        | Command::Image {
            command: ImageCommand::Export { image, output },
        } => crate::storage::export(&c, &image, output.as_deref()),
        Command::Rmi { images }
        | Command::Image {
            command: ImageCommand::Rm { images },
        } => each(&images, |i| {
            c.empty("DELETE", &format!("/v1/images/{}", enc(i)))?;
            println!("{i}");
            Ok(())
        }),
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
            println!("{}", serde_json::to_string_pretty(&t)?);
            Ok(0)
        }
        Command::Template {
            command: TemplateCommand::Rm { templates },
        } => each(&templates, |t| {
            c.empty("DELETE", &format!("/v1/templates/{}", enc(t)))?;
            println!("{t}");
            Ok(())
        }),
        Command::Snapshot { command } => crate::storage::snapshot(&c, command),
        Command::System {
            command: SystemCommand::Info { output },
        } => {
            let i: SystemInfo = c.json("GET", "/v1/system/info", None::<&()>)?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                println!("Version:     {} (API {})", i.version, i.api_version);
                println!("Root:        {}", i.root);
                println!(
                    "Host:        {} (kernel {}, cgroup {})",
                    i.hostname, i.kernel, i.cgroup
                );
                println!(
                    "Resources:   {} CPUs, {} memory",
                    i.cpus,
                    human(i.memory_bytes)
                );
                let k = &i.containers;
                println!(
                    "Containers:  {} ({} running, {} paused, {} stopped)",
                    k.total, k.running, k.paused, k.stopped
                );
                println!("Uptime:      {} s", i.uptime_seconds);
            }
            Ok(0)
        }
        Command::System {
            command: SystemCommand::Whoami,
        } => {
            let p: serde_json::Value = c.json("GET", "/v1/whoami", None::<&()>)?;
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(0)
        }
    }
}

/// Applies `f` to each container; with several, names the ones that failed and exits 1.
fn each(refs: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
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
    println!("{r}");
    Ok(())
}

fn create_body(a: CreateArgs, tty: bool) -> Result<ContainerCreate> {
    let mut args = a.args.into_iter();
    let image = if a.rootfs.is_some() || a.template.is_some() {
        None
    } else {
        args.next()
    };
    if image.is_none() && a.rootfs.is_none() && a.template.is_none() {
        bail!("give an IMAGE, --template NAME or --rootfs DIR");
    }
    let mut params = std::collections::BTreeMap::new();
    for p in a.params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param \"{p}\": use NAME=VALUE");
        };
        params.insert(k.to_string(), v.to_string());
    }
    let rootfs = a.rootfs.map(|r| {
        std::fs::canonicalize(&r)
            .map(|p| p.display().to_string())
            .unwrap_or(r)
    });
    let mut labels = std::collections::BTreeMap::new();
    for l in a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(ContainerCreate {
        name: a.name,
        image,
        template: a.template,
        params,
        rootfs,
        command: args.collect(),
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        tty,
        read_only: a.read_only,
        limits: Limits {
            memory: a
                .memory
                .map(|m| parse_size(&m))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--memory: {e}"))?,
            cpus: a.cpus,
            pids: a.pids_limit,
            disk: a
                .disk
                .map(|m| parse_size(&m))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--disk: {e}"))?,
        },
        labels,
        restart: a
            .restart
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--restart: {e}"))?,
        network: a.network,
        stop_signal: a.stop_signal,
        stop_timeout: a.stop_timeout,
        volumes: a.volumes.iter().map(|v| absolute_volume(v)).collect(),
        userns: a.userns,
        privileged: a.privileged,
        healthcheck: a.health_cmd.map(|cmd| condo_api::Healthcheck {
            command: vec!["sh".into(), "-c".into(), cmd],
            interval: a.health_interval,
            timeout: a.health_timeout,
            retries: a.health_retries,
        }),
    })
}

/// Makes the host side of `HOST:CONTAINER[:ro]` absolute (relative to the current directory).
fn absolute_volume(v: &str) -> String {
    match v.split_once(':') {
        Some((host, rest)) if !host.starts_with('/') => match std::fs::canonicalize(host) {
            Ok(p) => format!("{}:{rest}", p.display()),
            Err(_) => v.to_string(),
        },
        _ => v.to_string(),
    }
}

fn run_container(
    c: &Client,
    spec: CreateArgs,
    detach: bool,
    rm: bool,
    interactive: bool,
) -> Result<i32> {
    if rm && detach {
        bail!("--rm works only in the foreground (without -d)");
    }
    let made: Container = c.json(
        "POST",
        "/v1/containers",
        Some(&create_body(spec, interactive)?),
    )?;
    let path = format!("/v1/containers/{}", made.id);
    if let Err(e) = c.json::<Container>("POST", &format!("{path}/start"), None::<&()>) {
        if rm {
            let _ = c.empty("DELETE", &format!("{path}?force=true"));
        }
        return Err(e);
    }
    if detach {
        println!("{}", made.id);
        return Ok(0);
    }
    if interactive {
        let code = crate::tty::attach(c, &made.id);
        if rm {
            let _ = c.json::<WaitResult>("POST", &format!("{path}/wait"), None::<&()>);
            c.empty("DELETE", &format!("{path}?force=true"))?;
        }
        return code;
    }
    if interactive {
        let code = crate::tty::attach(c, &made.id);
        if rm {
            let _ = c.json::<WaitResult>("POST", &format!("{path}/wait"), None::<&()>);
            c.empty("DELETE", &format!("{path}?force=true"))?;
        }
        return code;
    }
    logs(c, &made.id, true, None, None, false)?;
    let w: WaitResult = c.json("POST", &format!("{path}/wait"), None::<&()>)?;
    if rm {
        c.empty("DELETE", &format!("{path}?force=true"))?;
    }
    Ok(w.exit_code)
}

fn logs(
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
    if output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if quiet {
        for x in &list {
            println!("{}", x.id);
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|x| {
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
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "IMAGE/ROOTFS",
            "COMMAND",
            "STATE",
            "CREATED",
            "RESTART",
        ],
        &rows,
    );
    Ok(0)
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
            println!("{}", serde_json::to_string(&samples)?);
        } else {
            if !no_stream {
                print!("\x1b[2J\x1b[H");
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
                    ]
                })
                .collect();
            table(&["ID", "NAME", "CPU", "MEMORY", "PIDS", "BLOCK I/O"], &rows);
        }
        if no_stream {
            return Ok(0);
        }
        std::io::stdout().flush()?;
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
