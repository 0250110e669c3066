//! The storage verbs: templates and snapshots.

use anyhow::{Context, Result};
use condo_api::{Container, Snapshot, Template, TemplateBuild, TemplateBuildEvent, TemplateBuilt};

use crate::client::{enc, Client};
use crate::output::{human, table};
use crate::{Format, SnapshotCommand};

/// `condo template build DIR|NAME`.
pub fn build(c: &Client, template: &str, verbose: bool) -> Result<i32> {
    let p = std::path::Path::new(template);
    let body = if p.join("template.toml").is_file() {
        TemplateBuild {
            path: Some(std::fs::canonicalize(p)?.display().to_string()),
            name: None,
        }
    } else {
        TemplateBuild {
            path: None,
            name: Some(template.to_string()),
        }
    };
    // Progress as the build goes: steps always, their output with -v.
    let data = serde_json::to_vec(&body)?;
    let resp = c.call("POST", "/v1/templates/build?stream=true", Some(&data))?;
    let mut built: Option<TemplateBuilt> = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(resp.body)) {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: TemplateBuildEvent = serde_json::from_str(&line)
            .with_context(|| format!("unexpected line from condod: {line}"))?;
        if let Some(l) = ev.log {
            if verbose || l.starts_with('[') {
                eprintln!("{l}");
            }
        }
        if let Some(e) = ev.error {
            return Err(anyhow::Error::new(e));
        }
        if ev.built.is_some() {
            built = ev.built;
        }
    }
    let Some(b) = built else {
        anyhow::bail!("condod ended the build without a result (see its log)");
    };
    eprintln!(
        "built {} in {:.2}s ({} steps, {} cached)",
        b.template.image, b.seconds, b.steps, b.cached
    );
    outln!("{}", b.template.image);
    Ok(0)
}

/// `condo templates`.
pub fn templates(c: &Client, output: Format) -> Result<i32> {
    let list: Vec<Template> = c.json("GET", "/v1/templates", None::<&()>)?;
    if output == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let params: Vec<String> = t
                .parameters
                .iter()
                .map(|(k, p)| match &p.default {
                    Some(d) => format!("{k}={d}"),
                    None if p.required => format!("{k} (required)"),
                    None => k.clone(),
                })
                .collect();
            vec![
                t.name.clone(),
                t.version.clone(),
                t.services.join(","),
                t.volumes.join(","),
                params.join(" "),
            ]
        })
        .collect();
    table(
        &["NAME", "VERSION", "SERVICES", "VOLUMES", "PARAMETERS"],
        &rows,
    );
    Ok(0)
}

/// `condo snapshot …`.
pub fn snapshot(c: &Client, cmd: SnapshotCommand) -> Result<i32> {
    let base = |ctr: &str| format!("/v1/containers/{}/snapshots", enc(ctr));
    match cmd {
        SnapshotCommand::Create { container, name } => {
            let s: Snapshot = c.json(
                "POST",
                &base(&container),
                Some(&serde_json::json!({ "name": name })),
            )?;
            outln!("{}", s.name);
        }
        SnapshotCommand::Ls { output, container } => {
            let list: Vec<Snapshot> = c.json("GET", &base(&container), None::<&()>)?;
            if output == Format::Json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| vec![s.name.clone(), s.created.to_string(), human(s.size)])
                .collect();
            table(&["NAME", "CREATED", "SIZE"], &rows);
        }
        SnapshotCommand::Rollback { container, name } => {
            let _: Container = c.json(
                "POST",
                &format!("{}/{}/rollback", base(&container), enc(&name)),
                None::<&()>,
            )?;
            outln!("{container}");
        }
        SnapshotCommand::Clone {
            container,
            name,
            new_name,
        } => {
            let made: Container = c.json(
                "POST",
                &format!("{}/{}/clone", base(&container), enc(&name)),
                Some(&serde_json::json!({ "name": new_name })),
            )?;
            outln!("{}", made.id);
        }
        SnapshotCommand::Rm { container, names } => {
            for n in &names {
                c.empty("DELETE", &format!("{}/{}", base(&container), enc(n)))?;
                outln!("{n}");
            }
        }
    }
    Ok(0)
}
