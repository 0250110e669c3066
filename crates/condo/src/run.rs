//! Making containers: `create` and `run` (pulling the image first when asked), in the
//! foreground, detached or on a terminal.

use anyhow::{bail, Context, Result};
use condo_api::{Container, ContainerCreate, Limits, WaitResult};

use crate::client::Client;
use crate::output::parse_size;
use crate::{CreateArgs, PullPolicy};

pub(crate) fn create_body(a: CreateArgs, tty: bool) -> Result<ContainerCreate> {
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
    let mut ports = Vec::new();
    for p in a.publish {
        if p.contains('=') {
            if a.template.is_none() {
                bail!("-p \"{p}\": a NAME=VALUE parameter needs --template");
            }
            let (k, v) = p.split_once('=').unwrap_or_default();
            params.insert(k.to_string(), v.to_string());
        } else {
            ports.push(crate::network::parse_port(&p)?);
        }
    }
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
        ports,
        rate: crate::network::rates(
            a.rate.as_deref(),
            a.rate_in.as_deref(),
            a.rate_out.as_deref(),
        )?,
        allowance: crate::network::allowance(
            a.allowance.as_deref(),
            a.allowance_policy.as_deref(),
        )?,
        stop_signal: a.stop_signal,
        stop_timeout: a.stop_timeout,
        volumes: a
            .volumes
            .iter()
            .map(|v| absolute_volume(v))
            .collect::<Result<_>>()?,
        userns: a.userns,
        privileged: a.privileged,
        ephemeral: false,
        healthcheck: a.health_cmd.map(|cmd| condo_api::Healthcheck {
            command: vec!["sh".into(), "-c".into(), cmd],
            interval: a.health_interval,
            timeout: a.health_timeout,
            retries: a.health_retries,
            start_period: a.health_start_period,
            start_interval: a.health_start_interval,
        }),
    })
}

/// Makes a relative host path (`./data:/x`, `../d:/x`) absolute; a bare name (`data:/x`) is a
/// named volume and stays as it is.
fn absolute_volume(v: &str) -> Result<String> {
    match v.split_once(':') {
        Some((host, rest)) if host.starts_with('.') || host.starts_with('~') => {
            let host = match host.strip_prefix("~/") {
                Some(h) => format!("{}/{h}", std::env::var("HOME").unwrap_or_default()),
                None => host.to_string(),
            };
            let p = std::fs::canonicalize(&host)
                .with_context(|| format!("--volume \"{v}\": cannot find {host}"))?;
            Ok(format!("{}:{rest}", p.display()))
        }
        _ => Ok(v.to_string()),
    }
}

/// Creates a container, pulling its image first as `--pull` says; an `ephemeral` one is
/// thrown away after its run (`--rm`).
pub(crate) fn create(
    c: &Client,
    spec: CreateArgs,
    tty: bool,
    ephemeral: bool,
) -> Result<Container> {
    let policy = spec.pull;
    let mut body = create_body(spec, tty)?;
    body.ephemeral = ephemeral;
    if let Some(image) = &body.image {
        let pull = match policy {
            PullPolicy::Always => true,
            PullPolicy::Missing => !crate::image::exists(c, image)?,
            PullPolicy::Never => false,
        };
        if pull {
            if policy == PullPolicy::Missing {
                eprintln!("{image} is not here: pulling it");
            } else {
                eprintln!("pulling {image}");
            }
            crate::image::pull_quietly(c, image, None)?;
        }
    }
    c.json("POST", "/v1/containers", Some(&body))
}

pub(crate) fn run_container(
    c: &Client,
    spec: CreateArgs,
    detach: bool,
    rm: bool,
    interactive: bool,
) -> Result<i32> {
    if rm && detach {
        bail!("--rm works only in the foreground (without -d)");
    }
    let made = create(c, spec, interactive, rm)?;
    let path = format!("/v1/containers/{}", made.id);
    if let Err(e) = c.json::<Container>("POST", &format!("{path}/start"), None::<&()>) {
        if rm {
            let _ = c.empty("DELETE", &format!("{path}?force=true"));
        }
        return Err(e);
    }
    if detach {
        outln!("{}", made.id);
        return Ok(0);
    }
    if interactive {
        let code = crate::tty::attach_run(c, &made.id);
        if rm {
            let _ = c.json::<WaitResult>("POST", &format!("{path}/wait"), None::<&()>);
            c.empty("DELETE", &format!("{path}?force=true"))?;
        }
        return code;
    }
    crate::cmd::logs(c, &made.id, true, None, None, false)?;
    let w: WaitResult = c.json("POST", &format!("{path}/wait"), None::<&()>)?;
    if rm {
        c.empty("DELETE", &format!("{path}?force=true"))?;
    }
    Ok(w.exit_code)
}
