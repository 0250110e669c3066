//! The storage verbs: images, templates and snapshots.

use std::io::Read;

use anyhow::{Context, Result};
use condo_api::{
    Container, Image, Snapshot, Template, TemplateBuild, TemplateBuildEvent, TemplateBuilt,
};

use crate::client::{enc, Client};
use crate::output::{human, table};
use crate::{Format, SnapshotCommand};

/// `condo import FILE`.
pub fn import(c: &Client, file: &str, name: Option<&str>) -> Result<i32> {
    let mut data = Vec::new();
    if file == "-" {
        std::io::stdin().read_to_end(&mut data)?;
    } else {
        std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut data))
            .with_context(|| format!("cannot read {file}"))?;
    }
    let q = name
        .map(|n| format!("?name={}", enc(n)))
        .unwrap_or_default();
    let mut resp = c.call("POST", &format!("/v1/images/import{q}"), Some(&data))?;
    let mut text = Vec::new();
    resp.body.read_to_end(&mut text)?;
    let list: Vec<Image> =
        serde_json::from_slice(&text).context("unexpected answer from condod")?;
    for i in list {
        println!("{}", i.name);
    }
    Ok(0)
}

/// `condo save IMAGE [-o FILE]`.
pub fn export(c: &Client, image: &str, output: Option<&str>) -> Result<i32> {
    let mut resp = c.call("GET", &format!("/v1/images/{}/export", enc(image)), None)?;
    match output {
        None | Some("-") => {
            std::io::copy(&mut resp.body, &mut std::io::stdout().lock())?;
        }
        Some(path) => {
            // Written beside, then renamed: a failed export leaves no half archive.
            let tmp = format!("{path}.part");
            let res = std::fs::File::create(&tmp)
                .and_then(|mut f| std::io::copy(&mut resp.body, &mut f).and_then(|_| f.sync_all()))
                .and_then(|_| std::fs::rename(&tmp, path));
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {path}"));
            }
        }
    }
    Ok(0)
}

/// `condo images`.
pub fn images(c: &Client, output: Format) -> Result<i32> {
    let list: Vec<Image> = c.json("GET", "/v1/images", None::<&()>)?;
    if output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            let d = i.digest.strip_prefix("sha256:").unwrap_or(&i.digest);
            vec![
                i.name.clone(),
                d.chars().take(12).collect(),
                i.layers.to_string(),
                human(i.size),
            ]
        })
        .collect();
    table(&["NAME", "DIGEST", "LAYERS", "SIZE"], &rows);
    Ok(0)
}

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
    println!("{}", b.template.image);
    Ok(0)
}

/// `condo templates`.
pub fn templates(c: &Client, output: Format) -> Result<i32> {
    let list: Vec<Template> = c.json("GET", "/v1/templates", None::<&()>)?;
    if output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
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
                params.join(" "),
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "SERVICES", "PARAMETERS"], &rows);
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
            println!("{}", s.name);
        }
        SnapshotCommand::Ls { output, container } => {
            let list: Vec<Snapshot> = c.json("GET", &base(&container), None::<&()>)?;
            if output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
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
            println!("{container}");
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
            println!("{}", made.id);
        }
        SnapshotCommand::Rm { container, names } => {
            for n in &names {
                c.empty("DELETE", &format!("{}/{}", base(&container), enc(n)))?;
                println!("{n}");
            }
        }
    }
    Ok(0)
}
