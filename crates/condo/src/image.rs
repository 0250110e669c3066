//! The image verbs: pull, import, export, list, inspect, remove, prune.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use condo_api::{Image, ImageEvent, ImagePull, ImagesPruned};

use crate::client::{enc, Client, Response};
use crate::output::{ago_secs, human, listing};
use crate::progress::{self, ImageBars};
use clap::{Args, Subcommand};

use crate::Format;

/// What `pull --help` adds.
pub const PULL_HELP: &str = "Without a registry the reference means Docker Hub (busybox is \
    registry-1.docker.io/library/busybox:latest). A registry on loopback (localhost:5000/x) is \
    spoken to in plain HTTP.";

/// `pull`'s arguments.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// `[registry/]repository[:tag][@digest]`.
    pub reference: String,
    /// Speak plain HTTP to the registry even when it is not on loopback.
    #[arg(long)]
    pub plain_http: bool,
}

/// `import`'s arguments.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The archive ("-" for stdin).
    pub file: String,
    /// Name for images the archive does not name.
    #[arg(long)]
    pub name: Option<String>,
}

/// The arguments of an image listing.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print names only.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

/// `export`'s arguments.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The image.
    pub image: String,
    /// The file to write ("-" or absent: stdout).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// `rmi`'s arguments.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Image names.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// An admin: remove this tenant's own images (not shared ones).
    #[arg(long)]
    pub tenant: Option<String>,
}

/// `condo image …`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Pull an image from a registry, with progress.
    #[command(after_help = PULL_HELP)]
    Pull(PullArgs),
    /// Import images from a tar (OCI layout or `docker save`).
    Import(ImportArgs),
    /// List images.
    Ls(ListArgs),
    /// Everything condod knows about images, as JSON.
    Inspect {
        /// Image names.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove unused blobs and unpacked layers; with -a, also images no container uses.
    Prune {
        /// Also remove every image no container was made from (templates keep theirs).
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not ask.
        #[arg(short = 'f', long)]
        force: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Write an image as an OCI image layout tar (what `podman load` and `ctr images import` read).
    Export(ExportArgs),
    /// Remove images (not while a container made from one exists).
    Rm(RmArgs),
}

/// Reads a streamed pull or import, showing its progress; returns the images it recorded.
fn follow(resp: Response) -> Result<Vec<Image>> {
    let mut bars = ImageBars::default();
    let mut result = None;
    for line in std::io::BufReader::new(resp.body).lines() {
        let line = line.context("the answer of condod broke off")?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: ImageEvent = match serde_json::from_str(&line) {
            Ok(ev) => ev,
            Err(e) => {
                bars.finish();
                bail!("unexpected line from condod ({e}): {line}");
            }
        };
        if let Some(p) = &ev.progress {
            bars.update(p);
        }
        if let Some(e) = ev.error {
            bars.finish();
            return Err(anyhow::Error::new(e));
        }
        if ev.images.is_some() {
            result = ev.images;
        }
    }
    bars.finish();
    result.ok_or_else(|| anyhow::anyhow!("condod ended without a result (see its log)"))
}

/// Pulls `reference` with progress on stderr; returns the name it was recorded under.
pub fn pull_quietly(c: &Client, reference: &str, plain_http: Option<bool>) -> Result<String> {
    let body = serde_json::to_vec(&ImagePull {
        reference: reference.to_string(),
        plain_http,
        ..Default::default()
    })?;
    let resp = c.call("POST", "/v1/images/pull?stream=true", Some(&body))?;
    let list = follow(resp)?;
    list.into_iter()
        .next()
        .map(|i| i.name)
        .ok_or_else(|| anyhow::anyhow!("condod recorded no image for {reference}"))
}

/// `condo pull REF`.
pub fn pull(c: &Client, reference: &str, plain_http: Option<bool>) -> Result<i32> {
    if !progress::drawn() {
        eprintln!("pulling {reference}");
    }
    let name = pull_quietly(c, reference, plain_http)?;
    outln!("{name}");
    Ok(0)
}

/// Whether the daemon has an image by this name (as short names mean it).
pub fn exists(c: &Client, image: &str) -> Result<bool> {
    match c.json::<Image>("GET", &format!("/v1/images/{}", enc(image)), None::<&()>) {
        Ok(_) => Ok(true),
        Err(e) => match e.downcast_ref::<condo_api::ErrorBody>() {
            Some(b) if b.code == condo_api::ErrorCode::NotFound => Ok(false),
            _ => Err(e),
        },
    }
}

/// `condo import FILE`: uploads with a bar, then follows the daemon's import.
pub fn import(c: &Client, file: &str, name: Option<&str>) -> Result<i32> {
    let mut q = vec!["stream=true".to_string()];
    if let Some(n) = name {
        q.push(format!("name={}", enc(n)));
    }
    let path = format!("/v1/images/import?{}", q.join("&"));
    let (len, reader): (u64, Box<dyn Read>) = if file == "-" {
        // A pipe has no length: read it first (the body is sent with its size).
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("cannot read stdin")?;
        (data.len() as u64, Box::new(std::io::Cursor::new(data)))
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot read {file}"))?;
        let len = f.metadata()?.len();
        (len, Box::new(f))
    };
    let bar = progress::bytes("uploading", Some(len));
    let resp = c.upload(&path, "application/x-tar", len, reader, |n| {
        bar.set_position(n)
    });
    bar.finish_and_clear();
    let list = follow(resp?)?;
    for i in list {
        outln!("{}", i.name);
    }
    Ok(0)
}

/// Copies `r` to `w`, moving `bar` along.
fn copy_with(
    mut r: impl Read,
    mut w: impl Write,
    bar: &indicatif::ProgressBar,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(g) => g,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..got])?;
        n += got as u64;
        bar.set_position(n);
    }
    w.flush()?;
    Ok(n)
}

/// `condo save IMAGE [-o FILE]`.
pub fn export(c: &Client, image: &str, output: Option<&str>) -> Result<i32> {
    let to_stdout = matches!(output, None | Some("-"));
    if to_stdout && std::io::stdout().is_terminal() {
        bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
    }
    let info: Image = c.json("GET", &format!("/v1/images/{}", enc(image)), None::<&()>)?;
    let resp = c.call("GET", &format!("/v1/images/{}/export", enc(image)), None)?;
    // The tar is a little larger than the blobs it holds: the bar is an estimate.
    let bar = progress::bytes("exporting", Some(info.size));
    match output {
        None | Some("-") => {
            let r = copy_with(resp.body, std::io::stdout().lock(), &bar);
            bar.finish_and_clear();
            r.context("export")?;
        }
        Some(path) => {
            // Written beside, then renamed: a failed export leaves no half archive.
            let tmp = format!("{path}.part");
            let res = std::fs::File::create(&tmp)
                .and_then(|mut f| copy_with(resp.body, &mut f, &bar).and_then(|_| f.sync_all()))
                .and_then(|_| std::fs::rename(&tmp, path));
            bar.finish_and_clear();
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {path}"));
            }
        }
    }
    Ok(0)
}

/// `condo images`: the shared images and the tenant's own.
pub fn images(c: &Client, output: Format, quiet: bool) -> Result<i32> {
    let list: Vec<Image> = c.json("GET", "/v1/images", None::<&()>)?;
    let header = ["NAME", "OWNER", "DIGEST", "LAYERS", "SIZE", "CREATED"];
    listing(
        &list,
        output,
        quiet,
        |i| i.name.clone(),
        &header,
        |i| {
            vec![
                i.name.clone(),
                // A tenant's own image, or one an admin shares with every tenant.
                i.tenant.clone().unwrap_or_else(|| "shared".into()),
                progress::short(&i.digest),
                i.layers.to_string(),
                human(i.size),
                ago_secs(i.created),
            ]
        },
    )
}

/// `condo image inspect NAME…`.
pub fn inspect(c: &Client, names: &[String]) -> Result<i32> {
    let mut all = Vec::new();
    for n in names {
        all.push(c.json::<Image>("GET", &format!("/v1/images/{}", enc(n)), None::<&()>)?);
    }
    outln!("{}", serde_json::to_string_pretty(&all)?);
    Ok(0)
}

/// Asks on the terminal whether to go on; without one, `--force` is needed.
pub fn confirm(question: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("{question} needs --force when stdin is not a terminal");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("cancelled");
    }
    Ok(())
}

/// `condo image prune [-a]`.
pub fn prune(c: &Client, all: bool, force: bool, output: Format) -> Result<i32> {
    if !force {
        confirm(if all {
            "remove every image no container was made from, and unused layers?"
        } else {
            "remove unused blobs and layers?"
        })?;
    }
    let r: ImagesPruned = c.json("POST", &format!("/v1/images/prune?all={all}"), None::<&()>)?;
    if output == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    for i in &r.images {
        outln!("removed {i}");
    }
    outln!(
        "{} blobs and {} layers removed, {} freed",
        r.blobs,
        r.layers,
        human(r.bytes)
    );
    Ok(0)
}
