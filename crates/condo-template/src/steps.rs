//! A template as an ordered list of build steps, each with the exact content its cache key is
//! made of: base, packages, files, run steps, then Condo's own files (init, services, first
//! start, the unrendered sources of rendered files).

use crate::build::BuildOptions;
use crate::meta::TemplateMeta;
use crate::model::{Base, FileSpec, Restart, Template};
use crate::params::shell_quote;
use crate::runner::StepProcess;
use condo_storage::Digest;

/// Where condo-init lives in every image.
pub const INIT: &str = "/etc/condo/init";

/// The init script installed in every image.
pub const INIT_SCRIPT: &str = include_str!("init.sh");

/// A file a step writes.
#[derive(Debug, Clone)]
pub struct FileData {
    /// Absolute path in the image.
    pub dest: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// `user[:group]`.
    pub owner: String,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Work {
    /// Lay out the host's busybox.
    HostBusybox,
    /// Install a Debian suite.
    Debootstrap {
        /// The suite.
        suite: String,
        /// The mirror.
        mirror: String,
    },
    /// Write files from the host side.
    Files(Vec<FileData>),
    /// Run a process in a build container; `needs` are paths that must exist in the image.
    Container {
        /// The process.
        process: StepProcess,
        /// Paths that must exist first.
        needs: Vec<String>,
    },
}

/// One build step.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the user sees (`run[0] make`).
    pub label: String,
    /// Everything the step's result depends on besides its parent layer.
    pub material: Vec<u8>,
    /// What it does.
    pub work: Work,
}

fn files_material(kind: &str, files: &[FileData]) -> Vec<u8> {
    let mut m = format!("{kind}\n");
    for f in files {
        m.push_str(&format!(
            "{}\0{:o}\0{}\0{}\n",
            f.dest,
            f.mode,
            f.owner,
            Digest::of(&f.data)
        ));
    }
    m.into_bytes()
}

fn process_material(kind: &str, p: &StepProcess) -> Vec<u8> {
    format!(
        "{kind}\n{:?}\n{:?}\n{}\n{}\n",
        p.args, p.env, p.cwd, p.network
    )
    .into_bytes()
}

/// Files of the template that are rendered at instantiation.
pub fn rendered(t: &Template) -> Vec<FileSpec> {
    t.raw
        .files
        .iter()
        .map(|f| f.get_ref().clone())
        .filter(|f| f.render)
        .collect()
}

/// Where the unrendered text of a file rendered to `dest` is kept in the image.
pub fn render_source(dest: &str) -> String {
    format!("/etc/condo/render{dest}")
}

fn read_src(t: &Template, f: &FileSpec) -> Result<Vec<u8>, String> {
    let p = t.dir.join(&f.src);
    std::fs::read(&p).map_err(|e| format!("files: {}: {e}", p.display()))
}

fn env_of(t: &Template, inherited: Option<&TemplateMeta>) -> Vec<String> {
    let mut env: std::collections::BTreeMap<String, String> = inherited
        .map(|m| {
            m.env
                .iter()
                .filter_map(|e| e.split_once('=').map(|(k, v)| (k.into(), v.into())))
                .collect()
        })
        .unwrap_or_default();
    env.extend(t.raw.env.clone());
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The steps of `t` after its base image (whose layers the builder resolves itself).
pub fn plan(
    t: &Template,
    opts: &BuildOptions,
    inherited: Option<&TemplateMeta>,
) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    match &t.base {
        Base::HostBusybox => {
            let bin = std::fs::read(&opts.host_busybox)
                .map_err(|e| format!("from host-busybox: {}: {e}", opts.host_busybox.display()))?;
            out.push(Step {
                label: "from host-busybox".into(),
                material: format!("host-busybox\n{}\n", Digest::of(&bin)).into_bytes(),
                work: Work::HostBusybox,
            });
        }
        Base::Debian(suite) => {
            let suite = &if suite == "host" {
                crate::base::host_suite()
                    .ok_or("from debian:host: no VERSION_CODENAME in /etc/os-release")?
            } else {
                suite.clone()
            };
            let mirror = opts.mirror.clone().or_else(crate::base::host_mirror).ok_or(
                "from debian: no Debian mirror in /etc/apt/sources.list or sources.list.d; set one in the build options",
            )?;
            out.push(Step {
                label: format!("from debian:{suite} (debootstrap minbase, {mirror})"),
                material: format!("debootstrap minbase\n{suite}\n{mirror}\n").into_bytes(),
                work: Work::Debootstrap {
                    suite: suite.clone(),
                    mirror,
                },
            });
        }
        _ => {}
    }
    let env = env_of(t, inherited);
    let network = t.build_network();
    if !t.raw.packages.is_empty() {
        let pkgs = t.raw.packages.join(" ");
        let script = format!(
            "printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d\n\
             chmod 755 /usr/sbin/policy-rc.d\n\
             apt-get update -q\n\
             apt-get install -y -q --no-install-recommends {pkgs}\n\
             rm -f /usr/sbin/policy-rc.d\n\
             apt-get clean\n\
             rm -rf /var/lib/apt/lists/*\n"
        );
        let mut penv = env.clone();
        penv.push("DEBIAN_FRONTEND=noninteractive".into());
        let process = StepProcess {
            args: vec!["/bin/sh".into(), "-ec".into(), script],
            env: penv,
            cwd: "/".into(),
            network,
        };
        out.push(Step {
            label: format!("packages {pkgs}"),
            material: process_material("packages", &process),
            work: Work::Container {
                process,
                needs: vec!["/usr/bin/apt-get".into()],
            },
        });
    }
    let mut copied = Vec::new();
    for f in t
        .raw
        .files
        .iter()
        .map(|f| f.get_ref())
        .filter(|f| !f.render)
    {
        copied.push(FileData {
            dest: f.dest.clone(),
            data: read_src(t, f)?,
            mode: f.mode,
            owner: f.owner.clone(),
        });
    }
    if !copied.is_empty() {
        out.push(Step {
            label: format!("files ({})", copied.len()),
            material: files_material("files", &copied),
            work: Work::Files(copied),
        });
    }
    for (i, r) in t.raw.run.iter().enumerate() {
        let cmd = r.get_ref();
        let script = match &t.raw.workdir {
            Some(w) => format!("mkdir -p {0} && cd {0}\n{cmd}", shell_quote(w)),
            None => cmd.clone(),
        };
        let process = StepProcess {
            args: vec!["/bin/sh".into(), "-ec".into(), script],
            env: env.clone(),
            cwd: "/".into(),
            network,
        };
        let first = cmd.lines().next().unwrap_or("");
        out.push(Step {
            label: format!("run[{i}] {first}"),
            material: process_material("run", &process),
            work: Work::Container {
                process,
                needs: vec!["/bin/sh".into()],
            },
        });
    }
    let condo = condo_files(t)?;
    out.push(Step {
        label: "condo init, services and first start".into(),
        material: files_material("condo", &condo),
        work: Work::Files(condo),
    });
    Ok(out)
}

fn condo_files(t: &Template) -> Result<Vec<FileData>, String> {
    let root = "0:0".to_string();
    let mut out = vec![FileData {
        dest: INIT.into(),
        data: INIT_SCRIPT.as_bytes().to_vec(),
        mode: 0o755,
        owner: root.clone(),
    }];
    let default_user = t.raw.user.clone().unwrap_or_default();
    let default_wd = t.raw.workdir.clone().unwrap_or_else(|| "/".into());
    for (name, s) in &t.raw.services {
        let s = s.get_ref();
        let restart = match s.restart {
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::Never => "never",
        };
        let body = format!(
            "restart={restart}\nuser={}\nworkdir={}\ncommand={}\n",
            shell_quote(s.user.as_deref().unwrap_or(&default_user)),
            shell_quote(s.workdir.as_deref().unwrap_or(&default_wd)),
            shell_quote(&s.command)
        );
        out.push(FileData {
            dest: format!("/etc/condo/services/{name}.svc"),
            data: body.into_bytes(),
            mode: 0o644,
            owner: root.clone(),
        });
    }
    for (i, cmd) in t.raw.first_start.iter().enumerate() {
        out.push(FileData {
            dest: format!("/etc/condo/first-start/{i:03}.sh"),
            data: format!("{cmd}\n").into_bytes(),
            mode: 0o755,
            owner: root.clone(),
        });
    }
    for f in rendered(t) {
        out.push(FileData {
            dest: render_source(&f.dest),
            data: read_src(t, &f)?,
            mode: 0o600,
            owner: root.clone(),
        });
    }
    Ok(out)
}
