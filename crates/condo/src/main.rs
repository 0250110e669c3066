//! `condo`: Condo's command line. It talks to condod only over the HTTP API.

mod client;
mod cmd;
mod context;
mod output;
mod storage;
mod tenancy;
mod tty;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Command line of condo.
#[derive(Parser, Debug)]
#[command(
    name = "condo",
    version,
    about = "Run and manage containers through condod",
    after_help = "The daemon is found through --host or CONDO_HOST (unix://PATH or tcp://HOST:PORT), \
        else the current context (condo login, condo context), else unix:///var/lib/condo/condod.sock. \
        A token is sent from --token or CONDO_TOKEN, else the context's (only to its own host). \
        Root on the local socket needs none."
)]
pub struct Cli {
    /// Where condod listens (default: the context's host).
    #[arg(long, global = true, env = "CONDO_HOST")]
    host: Option<String>,
    /// API token (sent as a bearer token; default: the context's).
    #[arg(long, global = true, env = "CONDO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Use this context instead of the current one.
    #[arg(long, global = true, env = "CONDO_CONTEXT")]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// How listings print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// JSON, as the API answers.
    Json,
}

/// What a new container runs and with which limits (shared by `run` and `create`).
#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Name (unique among your containers).
    #[arg(long)]
    pub name: Option<String>,
    /// Use this host directory as the root filesystem (then every argument is the command).
    #[arg(long, conflicts_with = "template")]
    pub rootfs: Option<String>,
    /// Make the container an instance of this built template (then every argument is the
    /// command, and none runs the template's init with its services).
    #[arg(long)]
    pub template: Option<String>,
    /// A template parameter NAME=VALUE (repeatable).
    #[arg(short = 'p', long = "param", requires = "template")]
    pub params: Vec<String>,
    /// Environment variable KEY=value (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// uid[:gid] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Host name inside the container (default: its name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (bytes, or with k, m, g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPU limit, in CPUs (0.5 = half a CPU).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Most processes and threads.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Label KEY=value (repeatable).
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Network to join (only "none" for now).
    #[arg(long)]
    pub network: Option<String>,
    /// Signal that stop sends first.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds stop waits before SIGKILL.
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// Size of the writable layer (e.g. 512m), for an image or template container.
    #[arg(long)]
    pub disk: Option<String>,
    /// Mount a host path: /HOST:/CONTAINER[:ro] (repeatable).
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// "host": share the host's user namespace instead of an id range of its own (admin).
    #[arg(long)]
    pub userns: Option<String>,
    /// Turn isolation off: host user namespace, all capabilities, no seccomp (admin).
    #[arg(long)]
    pub privileged: bool,
    /// Healthcheck command, run with `sh -c` inside the container.
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Seconds between healthchecks.
    #[arg(long, default_value_t = 30)]
    pub health_interval: u64,
    /// Seconds a healthcheck may take.
    #[arg(long, default_value_t = 10)]
    pub health_timeout: u64,
    /// Failed healthchecks in a row that make the container unhealthy.
    #[arg(long, default_value_t = 3)]
    pub health_retries: u32,
    /// IMAGE then COMMAND, or with --rootfs or --template only the COMMAND.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and start a container; without -d, show its output and exit with its code.
    Run {
        /// Run in the background and print the container's id.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Delete the container once it ends (foreground only).
        #[arg(long)]
        rm: bool,
        /// Keep stdin open (needs -t).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Give the container a terminal.
        #[arg(short = 't', long)]
        tty: bool,
        #[command(flatten)]
        spec: CreateArgs,
    },
    /// Create a container without starting it; prints its id.
    Create {
        #[command(flatten)]
        spec: CreateArgs,
    },
    /// List containers.
    Ps {
        /// Include containers that do not run.
        #[arg(short = 'a', long)]
        all: bool,
        /// Print ids only.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Start stopped containers.
    Start {
        /// Containers (id, id prefix or name).
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers: their stop signal, then SIGKILL after the timeout.
    Stop {
        /// Seconds before SIGKILL (default: the container's, else 10).
        #[arg(short = 't', long)]
        time: Option<u64>,
        /// Signal to send first.
        #[arg(short = 's', long)]
        signal: Option<String>,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop and start containers again.
    Restart {
        /// Seconds before SIGKILL.
        #[arg(short = 't', long)]
        time: Option<u64>,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers (default SIGKILL).
    Kill {
        /// Signal name or number.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze every process of containers.
    Pause {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    Resume {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Delete containers.
    Rm {
        /// Kill them first when they run.
        #[arg(short = 'f', long)]
        force: bool,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Give a container a new name.
    Rename {
        /// The container.
        container: String,
        /// Its new name.
        name: String,
    },
    /// Change limits or the restart policy of a container, live.
    Update {
        /// Memory limit (bytes, or with k, m, g).
        #[arg(short = 'm', long)]
        memory: Option<String>,
        /// CPU limit in CPUs.
        #[arg(long)]
        cpus: Option<f64>,
        /// Most processes.
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        /// New restart policy.
        #[arg(long)]
        restart: Option<String>,
        /// The container.
        container: String,
    },
    /// Run a command in a running container.
    Exec {
        /// Keep stdin open (with -t).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Give the command a terminal.
        #[arg(short = 't', long)]
        tty: bool,
        /// Environment variable KEY=value (repeatable).
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Working directory.
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// uid[:gid].
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// The container.
        container: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show a container's output.
    Logs {
        /// Keep showing new output until the container stops.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<u64>,
        /// Only lines since a time (RFC 3339, or seconds since the epoch).
        #[arg(long)]
        since: Option<String>,
        /// Prefix each line with its time.
        #[arg(short = 't', long)]
        timestamps: bool,
        /// The container.
        container: String,
    },
    /// Resource use of running containers (all when none is named).
    Stats {
        /// One sample and exit.
        #[arg(long)]
        no_stream: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
        /// Containers.
        containers: Vec<String>,
    },
    /// Everything condod knows about containers, as JSON.
    Inspect {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait for containers to stop; prints their exit codes.
    Wait {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Follow the event stream.
    Events {
        /// Start after this sequence number (0 = from the beginning).
        #[arg(long)]
        since: Option<i64>,
        /// Print past events and exit.
        #[arg(long)]
        no_follow: bool,
    },
    /// Import images from a tar (OCI layout or `docker save`); same as `condo image import`.
    Import {
        /// The archive ("-" for stdin).
        file: String,
        /// Name for images the archive does not name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List images; same as `condo image ls`.
    Images {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Write an image as an OCI image layout tar; same as `condo image export`.
    Save {
        /// The image.
        image: String,
        /// The file to write ("-" or absent: stdout).
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Remove images; same as `condo image rm`.
    Rmi {
        /// Image names.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Images: import, ls, rm.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Templates: build, ls.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// List built templates; same as `condo template ls`.
    Templates {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Snapshots of a container made from an image or template (stop it first on overlay).
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Daemon-wide commands.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Check a token (--token, CONDO_TOKEN or --token-stdin) with a daemon and keep both as the
    /// context named by --context (default "default"), made current.
    Login {
        /// Read the token from the first line of stdin.
        #[arg(long)]
        token_stdin: bool,
        /// The daemon: unix://PATH or tcp://HOST:PORT (default: --host, else the local socket).
        #[arg(id = "address", value_name = "HOST")]
        address: Option<String>,
    },
    /// Named contexts (a daemon and a token): ls, use, rm.
    Context {
        #[command(subcommand)]
        command: ContextCommand,
    },
    /// Tenants, their quotas and usage: ls, create, show, quota, usage, rm.
    Tenant {
        #[command(subcommand)]
        command: tenancy::TenantCommand,
    },
    /// Users of a tenant and their roles: ls, create, rm.
    User {
        #[command(subcommand)]
        command: tenancy::UserCommand,
    },
    /// API tokens: ls, create, revoke.
    Token {
        #[command(subcommand)]
        command: tenancy::TokenCommand,
    },
    /// The audit log of changes (an admin sees every tenant's, a tenant owner its own).
    Audit(tenancy::AuditArgs),
}

/// `condo context …`.
#[derive(Subcommand, Debug)]
pub enum ContextCommand {
    /// List contexts; the current one is marked with *.
    Ls,
    /// Make a context the current one.
    Use {
        /// The context.
        name: String,
    },
    /// Forget contexts and their tokens (which keep working until revoked).
    Rm {
        /// The contexts.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `condo image …`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Import images from a tar (OCI layout or `docker save`).
    Import {
        /// The archive ("-" for stdin).
        file: String,
        /// Name for images the archive does not name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Write an image as an OCI image layout tar (what `podman load` and `ctr images import` read).
    Export {
        /// The image.
        image: String,
        /// The file to write ("-" or absent: stdout).
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Remove images (containers made from them keep their files).
    Rm {
        /// Image names.
        #[arg(required = true)]
        images: Vec<String>,
    },
}

/// `condo template …`.
#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// Build a template: a folder (with template.toml), or a name from the daemon's library.
    Build {
        /// DIR or NAME.
        template: String,
        /// Print each step's output.
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// List built templates.
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// A built template's parameters, services and ports, as JSON.
    Show {
        /// `name` or `name:version`.
        template: String,
    },
    /// Remove built templates and their images (instances keep their files).
    Rm {
        /// `name` or `name:version`.
        #[arg(required = true)]
        templates: Vec<String>,
    },
}

/// `condo snapshot …`.
#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Take a snapshot of a stopped container's root filesystem.
    Create {
        /// The container.
        container: String,
        /// The snapshot's name.
        name: String,
    },
    /// List a container's snapshots.
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
        /// The container.
        container: String,
    },
    /// Bring a stopped container's root filesystem back to a snapshot.
    Rollback {
        /// The container.
        container: String,
        /// The snapshot.
        name: String,
    },
    /// Make a new container from a snapshot; prints its id.
    Clone {
        /// The container.
        container: String,
        /// The snapshot.
        name: String,
        /// The new container's name.
        new_name: String,
    },
    /// Delete snapshots.
    Rm {
        /// The container.
        container: String,
        /// The snapshots.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `condo system …`.
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// The daemon's host, version and container counts.
    Info {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Who the daemon thinks you are.
    Whoami,
}

fn main() {
    let cli = Cli::parse();
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("condo: {e:#}");
            match e.downcast_ref::<condo_api::ErrorBody>() {
                Some(b) if b.code == condo_api::ErrorCode::NotFound => 3,
                Some(b)
                    if matches!(
                        b.code,
                        condo_api::ErrorCode::Conflict | condo_api::ErrorCode::QuotaExceeded
                    ) =>
                {
                    4
                }
                Some(b)
                    if matches!(
                        b.code,
                        condo_api::ErrorCode::Unauthorized | condo_api::ErrorCode::Forbidden
                    ) =>
                {
                    5
                }
                _ => 1,
            }
        }
    };
    std::process::exit(code);
}
