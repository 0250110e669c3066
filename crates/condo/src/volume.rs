//! The volume verbs: create, ls, inspect, rm, prune.

use anyhow::{bail, Result};
use condo_api::{Volume, VolumeCreate, VolumesPruned};

use crate::client::{enc, Client};
use crate::output::{ago, human, listing};
use clap::Subcommand;

use crate::Format;

/// `condo volume …`.
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a named volume; prints its name.
    Create {
        /// Its name (made up when absent).
        name: Option<String>,
        /// Label KEY=value (repeatable).
        #[arg(short = 'l', long = "label")]
        labels: Vec<String>,
    },
    /// List volumes and the containers that mount them.
    Ls {
        /// Print names only.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Volumes with their size, host directory and users, as JSON.
    Inspect {
        /// Volume names.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes and their data (not while a container mounts one, unless -f and it is
    /// stopped).
    Rm {
        /// Remove even when stopped containers mount it.
        #[arg(short = 'f', long)]
        force: bool,
        /// Volume names.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove every volume of yours that no container mounts, with its data.
    Prune {
        /// Do not ask.
        #[arg(short = 'f', long)]
        force: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
}

/// `condo volume …`.
pub fn run(c: &Client, cmd: VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create { name, labels } => {
            let mut body = VolumeCreate {
                name,
                ..Default::default()
            };
            for l in labels {
                let Some((k, v)) = l.split_once('=') else {
                    bail!("--label \"{l}\": use KEY=value");
                };
                body.labels.insert(k.to_string(), v.to_string());
            }
            let v: Volume = c.json("POST", "/v1/volumes", Some(&body))?;
            outln!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls { output, quiet } => {
            let list: Vec<Volume> = c.json("GET", "/v1/volumes", None::<&()>)?;
            let header = ["NAME", "TENANT", "CREATED", "USED BY"];
            listing(
                &list,
                output,
                quiet,
                |v| v.name.clone(),
                &header,
                |v| {
                    let users = if v.used_by.is_empty() {
                        "-".into()
                    } else {
                        v.used_by.join(",")
                    };
                    vec![v.name.clone(), v.tenant.clone(), ago(&v.created_at), users]
                },
            )
        }
        VolumeCommand::Inspect { volumes } => {
            let mut all = Vec::new();
            for v in &volumes {
                all.push(c.json::<Volume>(
                    "GET",
                    &format!("/v1/volumes/{}", enc(v)),
                    None::<&()>,
                )?);
            }
            outln!("{}", serde_json::to_string_pretty(&all)?);
            Ok(0)
        }
        VolumeCommand::Rm { force, volumes } => crate::cmd::each(&volumes, |v| {
            let q = if force { "?force=true" } else { "" };
            c.empty("DELETE", &format!("/v1/volumes/{}{q}", enc(v)))?;
            outln!("{v}");
            Ok(())
        }),
        VolumeCommand::Prune { force, output } => {
            if !force {
                crate::image::confirm("remove every volume no container mounts, with its data?")?;
            }
            let r: VolumesPruned = c.json("POST", "/v1/volumes/prune", None::<&()>)?;
            if output == Format::Json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(0);
            }
            for v in &r.volumes {
                outln!("removed {v}");
            }
            outln!(
                "{} volumes removed, {} freed",
                r.volumes.len(),
                human(r.bytes)
            );
            Ok(0)
        }
    }
}
