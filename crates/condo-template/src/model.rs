//! The template file (`template.toml`): serde types, loading, and the checks that name the
//! field and line of every mistake.

use crate::params::{self, ParamDef, ParamType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use toml::Spanned;

/// The name of the file in a template's folder.
pub const FILE_NAME: &str = "template.toml";

/// A reason a template could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key (the message has the line).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("{}:{line}: {field}: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based) of the offending value.
        line: usize,
        /// The key path (`parameters.port.default`).
        field: String,
        /// Why.
        reason: String,
    },
}

/// A template as written in `template.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    /// The template's name (also the image name).
    pub name: Spanned<String>,
    /// Its version (the image tag).
    pub version: Spanned<String>,
    /// One line for `condo template ls`.
    #[serde(default)]
    pub description: String,
    /// What it starts from.
    pub from: Spanned<String>,
    /// Packages installed with the base's package manager.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Files copied from the template's folder.
    #[serde(default)]
    pub files: Vec<Spanned<FileSpec>>,
    /// Shell commands run at build time, one layer each.
    #[serde(default)]
    pub run: Vec<Spanned<String>>,
    /// Environment of every process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of every process.
    pub workdir: Option<String>,
    /// User of the build steps and services (name or uid[:gid]).
    pub user: Option<String>,
    /// Ports the environment listens on.
    #[serde(default)]
    pub expose: Vec<u16>,
    /// Paths whose data belongs to the instance (kept across rebase).
    #[serde(default)]
    pub volumes: Vec<Spanned<String>>,
    /// Long-running processes supervised by condo-init.
    #[serde(default)]
    pub services: BTreeMap<String, Spanned<Service>>,
    /// How the manager checks the environment is well.
    pub healthcheck: Option<Healthcheck>,
    /// Default resource limits of an instance.
    #[serde(default)]
    pub resources: Resources,
    /// What an instance is tailored with.
    #[serde(default)]
    pub parameters: BTreeMap<String, Spanned<RawParam>>,
    /// Shell commands run once, at an instance's first start, with the parameters in the env.
    #[serde(default)]
    pub first_start: Vec<String>,
    /// Build settings.
    #[serde(default)]
    pub build: BuildSettings,
}

/// A file to copy into the image.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path relative to the template's folder.
    pub src: String,
    /// Absolute path in the image.
    pub dest: String,
    /// Permission bits (`0o644` in TOML).
    #[serde(default = "default_mode")]
    pub mode: u32,
    /// `user[:group]`, by name (from the image's /etc/passwd) or number.
    #[serde(default = "default_owner")]
    pub owner: String,
    /// Render `{{ name }}` with the instance's parameters when it is created.
    #[serde(default)]
    pub render: bool,
}

fn default_mode() -> u32 {
    0o644
}

fn default_owner() -> String {
    "0:0".into()
}

/// When a service is started again after it exits.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Always (the default).
    #[default]
    Always,
    /// Only after a non-zero exit.
    OnFailure,
    /// Never.
    Never,
}

/// A supervised long-running process.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Shell command line (run with `sh -c`, in its own process group).
    pub command: String,
    /// Restart policy.
    #[serde(default)]
    pub restart: Restart,
    /// Working directory (default: the template's).
    pub workdir: Option<String>,
    /// User it runs as (default: the template's `user`, else root).
    pub user: Option<String>,
}

/// How the manager checks health: a command run in the instance.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// Shell command; exit 0 means healthy.
    pub command: String,
    /// Seconds between checks.
    #[serde(default = "d10")]
    pub interval: u64,
    /// Seconds before a check counts as failed.
    #[serde(default = "d5")]
    pub timeout: u64,
    /// Failures in a row before unhealthy.
    #[serde(default = "d3")]
    pub retries: u32,
    /// Seconds after start during which failures do not count.
    #[serde(default)]
    pub start_period: u64,
}

fn d10() -> u64 {
    10
}
fn d5() -> u64 {
    5
}
fn d3() -> u32 {
    3
}

/// Default limits of an instance.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Memory limit ("512M", "2G").
    pub memory: Option<String>,
    /// CPUs (1.5 = one and a half).
    pub cpus: Option<f64>,
    /// Most processes.
    pub pids: Option<u64>,
    /// Disk quota ("10G").
    pub disk: Option<String>,
}

/// Build settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BuildSettings {
    /// Whether build steps reach the network (default: when there are packages or the base is
    /// Debian).
    pub network: Option<bool>,
}

/// A parameter as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    /// string, int, bool or password.
    #[serde(rename = "type", default)]
    pub kind: ParamType,
    /// The value when none is given.
    pub default: Option<toml::Value>,
    /// Whether a value must be given.
    #[serde(default)]
    pub required: bool,
    /// Whether the value is hidden from listings (passwords always are).
    #[serde(default)]
    pub secret: bool,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// Where a template starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Base {
    /// An empty root filesystem.
    Scratch,
    /// An empty root filesystem plus the host's static /bin/busybox and its applet links.
    HostBusybox,
    /// A Debian suite installed with debootstrap (minbase) from the host's apt mirror.
    Debian(String),
    /// Another template of the library, built first.
    Template(String),
    /// An image already in the image store.
    Image(String),
}

impl Base {
    /// Parses a `from` value.
    pub fn parse(s: &str) -> Result<Base, String> {
        let s = s.trim();
        let ok_name = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        Ok(match s {
            "" => return Err("is empty".into()),
            "scratch" => Base::Scratch,
            "host-busybox" => Base::HostBusybox,
            _ => {
                if let Some(suite) = s.strip_prefix("debian:") {
                    if !ok_name(suite) {
                        return Err(format!("{suite:?} is not a Debian suite name"));
                    }
                    Base::Debian(suite.into())
                } else if let Some(t) = s.strip_prefix("template:") {
                    if !ok_name(t) {
                        return Err(format!("{t:?} is not a template name"));
                    }
                    Base::Template(t.into())
                } else {
                    let r = s.strip_prefix("image:").unwrap_or(s);
                    if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(format!("{r:?} is not an image reference"));
                    }
                    Base::Image(r.into())
                }
            }
        })
    }
}

/// A loaded and checked template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The folder it came from.
    pub dir: PathBuf,
    /// The file as written.
    pub raw: RawTemplate,
    /// The parsed `from`.
    pub base: Base,
    /// The parameters, checked and with normalised defaults.
    pub params: BTreeMap<String, ParamDef>,
}

impl Template {
    /// The image name (`name:version`).
    pub fn image_name(&self) -> String {
        format!("{}:{}", self.raw.name.get_ref(), self.raw.version.get_ref())
    }

    /// Whether build steps get the host's network.
    pub fn build_network(&self) -> bool {
        self.raw
            .build
            .network
            .unwrap_or(!self.raw.packages.is_empty() || matches!(self.base, Base::Debian(_)))
    }

    /// Loads `dir/template.toml` and checks it.
    pub fn load(dir: &Path) -> Result<Template, ModelError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(dir, &path, &text)
    }

    /// Parses and checks template text; `path` is only for messages.
    pub fn parse(dir: &Path, path: &Path, text: &str) -> Result<Template, ModelError> {
        let raw: RawTemplate = toml::from_str(text).map_err(|e| ModelError::Parse {
            path: path.into(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let line = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        let bad =
            |span: std::ops::Range<usize>, field: String, reason: String| ModelError::Invalid {
                path: path.into(),
                line: line(span),
                field,
                reason,
            };
        let bad_key = |key: &str, field: String, reason: String| ModelError::Invalid {
            path: path.into(),
            line: key_line(text, key),
            field,
            reason,
        };
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        };
        if !name_ok(raw.name.get_ref()) {
            return Err(bad(
                raw.name.span(),
                "name".into(),
                "use lowercase letters, digits, '-', '_' and '.'".into(),
            ));
        }
        if !name_ok(raw.version.get_ref()) {
            return Err(bad(
                raw.version.span(),
                "version".into(),
                "use lowercase letters, digits, '-', '_' and '.'".into(),
            ));
        }
        let base =
            Base::parse(raw.from.get_ref()).map_err(|r| bad(raw.from.span(), "from".into(), r))?;
        if !raw.packages.is_empty()
            && !matches!(base, Base::Debian(_) | Base::Template(_) | Base::Image(_))
        {
            return Err(bad(
                raw.from.span(),
                "packages".into(),
                format!("{:?} has no package manager", raw.from.get_ref()),
            ));
        }
        for (i, p) in raw.packages.iter().enumerate() {
            if p.is_empty() || p.starts_with('-') || p.chars().any(|c| c.is_whitespace()) {
                return Err(bad_key(
                    "packages",
                    format!("packages[{i}]"),
                    format!("{p:?} is not a package name"),
                ));
            }
        }
        let mut params = BTreeMap::new();
        for (n, p) in &raw.parameters {
            let def = params::check_def(n, p.get_ref())
                .map_err(|r| bad(p.span(), format!("parameters.{n}"), r))?;
            params.insert(n.clone(), def);
        }
        for (i, f) in raw.files.iter().enumerate() {
            let fs = f.get_ref();
            let field = format!("files[{i}]");
            let src = Path::new(&fs.src);
            if fs.src.is_empty()
                || !src
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(bad(
                    f.span(),
                    format!("{field}.src"),
                    format!(
                        "{:?} must be a relative path inside the template's folder",
                        fs.src
                    ),
                ));
            }
            let full = dir.join(src);
            let meta = std::fs::symlink_metadata(&full).map_err(|e| {
                bad(
                    f.span(),
                    format!("{field}.src"),
                    format!("{}: {e}", full.display()),
                )
            })?;
            if !meta.is_file() {
                return Err(bad(
                    f.span(),
                    format!("{field}.src"),
                    format!("{} is not a regular file", full.display()),
                ));
            }
            check_abs(&fs.dest).map_err(|r| bad(f.span(), format!("{field}.dest"), r))?;
            if fs.mode > 0o7777 {
                return Err(bad(
                    f.span(),
                    format!("{field}.mode"),
                    format!("{:o} is not a mode", fs.mode),
                ));
            }
            if fs.render {
                let body = std::fs::read_to_string(&full).map_err(|e| {
                    bad(
                        f.span(),
                        format!("{field}.src"),
                        format!("rendered files must be UTF-8: {e}"),
                    )
                })?;
                for p in params::placeholders(&body) {
                    if !params.contains_key(&p) {
                        return Err(bad(
                            f.span(),
                            format!("{field}.src"),
                            format!("{} uses {{{{ {p} }}}}, which is not a parameter", fs.src),
                        ));
                    }
                }
            }
        }
        for (i, v) in raw.volumes.iter().enumerate() {
            check_abs(v.get_ref()).map_err(|r| bad(v.span(), format!("volumes[{i}]"), r))?;
        }
        for (n, s) in &raw.services {
            if !name_ok(n) {
                return Err(bad(
                    s.span(),
                    format!("services.{n}"),
                    "bad service name".into(),
                ));
            }
            if s.get_ref().command.trim().is_empty() {
                return Err(bad(
                    s.span(),
                    format!("services.{n}.command"),
                    "is empty".into(),
                ));
            }
        }
        for (i, r) in raw.run.iter().enumerate() {
            if r.get_ref().trim().is_empty() {
                return Err(bad(r.span(), format!("run[{i}]"), "is empty".into()));
            }
        }
        for k in raw.env.keys() {
            if !params::is_ident(k) && !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad_key(k, format!("env.{k}"), "not a variable name".into()));
            }
        }
        if let Some(w) = &raw.workdir {
            check_abs(w).map_err(|r| bad_key("workdir", "workdir".into(), r))?;
        }
        for (k, v) in [
            ("resources.memory", &raw.resources.memory),
            ("resources.disk", &raw.resources.disk),
        ] {
            if let Some(v) = v {
                let last = k.rsplit('.').next().unwrap_or(k);
                params::parse_size(v).map_err(|r| bad_key(last, k.into(), r))?;
            }
        }
        Ok(Template {
            dir: dir.into(),
            raw,
            base,
            params,
        })
    }
}

fn check_abs(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || p.contains('\0')
    {
        return Err(format!("{p:?} must be an absolute path without '..'"));
    }
    Ok(())
}

/// The line of the first `key = …` (or `"key" = …`) in `text`; 1 when not found.
fn key_line(text: &str, key: &str) -> usize {
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start().trim_start_matches('"');
        if let Some(rest) = t.strip_prefix(key) {
            let rest = rest.trim_start_matches('"').trim_start();
            if rest.starts_with('=') {
                return i + 1;
            }
        }
    }
    1
}
