//! The volume verbs: create, ls, inspect, rm, prune.

use anyhow::{bail, Result};
use condo_api::{Volume, VolumeCreate, VolumesPruned};

use crate::client::{enc, Client};
use crate::output::{ago, human, table};
use crate::{Format, VolumeCommand};

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
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls { output, quiet } => {
            let list: Vec<Volume> = c.json("GET", "/v1/volumes", None::<&()>)?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            if quiet {
                list.iter().for_each(|v| println!("{}", v.name));
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        v.tenant.clone(),
                        ago(&v.created_at),
                        if v.used_by.is_empty() {
                            "-".into()
                        } else {
                            v.used_by.join(",")
                        },
                    ]
                })
                .collect();
            table(&["NAME", "TENANT", "CREATED", "USED BY"], &rows);
            Ok(0)
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
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(0)
        }
        VolumeCommand::Rm { force, volumes } => crate::cmd::each(&volumes, |v| {
            let q = if force { "?force=true" } else { "" };
            c.empty("DELETE", &format!("/v1/volumes/{}{q}", enc(v)))?;
            println!("{v}");
            Ok(())
        }),
        VolumeCommand::Prune { force, output } => {
            if !force {
                crate::image::confirm("remove every volume no container mounts, with its data?")?;
            }
            let r: VolumesPruned = c.json("POST", "/v1/volumes/prune", None::<&()>)?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(0);
            }
            for v in &r.volumes {
                println!("removed {v}");
            }
            println!(
                "{} volumes removed, {} freed",
                r.volumes.len(),
                human(r.bytes)
            );
            Ok(0)
        }
    }
}
