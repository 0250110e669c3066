//! `condo`: Condo's command line. It talks to condod only over the HTTP API.

/// `println!` for standard output that ends the program quietly once its reader has gone
/// (`condo ps | head`) instead of panicking, and with a message on any other write error.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `print!` with the same handling as `outln!`.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::write_out(format_args!($($t)*))
    };
}

mod client;
mod cmd;
mod context;
mod image;
mod network;
mod output;
mod progress;
mod run;
mod storage;
mod tenancy;
mod tls;
mod tty;
mod volume;

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
        Root on the local socket needs none.\n\n\
        Examples:\n  condo run -d --name web -m 256m -v data:/srv busybox httpd -f -p 8080\n  \
        condo logs -f web\n  condo exec -it web sh\n  condo rm -f web\n\n\
        Exit codes: 0 success (run and exec: the command's own code), 1 failure, 2 bad usage, \
        3 no such container or image, 4 conflict with its state, 5 not allowed."
)]
pub struct Cli {
    /// Where condod listens (default: the context's host).
    #[arg(long, global = true, env = "CONDO_HOST")]
    host: Option<String>,
    /// API token (sent as a bearer token; default: the context's).
    #[arg(long, global = true, env = "CONDO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The CA certificate (PEM) that signed the daemon's TLS certificate, for tcp:// hosts
    /// (default: the context's, else /var/lib/condo/tls/ca.pem when readable, and public CAs).
    #[arg(long, global = true, env = "CONDO_CA")]
    ca: Option<std::path::PathBuf>,
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

/// When `run` and `create` pull their image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// When the daemon does not have it.
    Missing,
    /// Every time (to get the newest).
    Always,
    /// Never: an image that is not local is an error.
    Never,
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
    #[arg(long = "param", requires = "template")]
    pub params: Vec<String>,
    /// Publish a port, [ADDR:]HOST_PORT:CONTAINER_PORT[/udp] (repeatable; needs --network).
    /// A NAME=VALUE here is a template parameter, as with --param.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
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
    /// Network to join (see `condo network`); without one the container has only loopback.
    #[arg(long)]
    pub network: Option<String>,
    /// Rate limit of the container's traffic, both directions (bit/s, or 10mbit, 500kbit).
    #[arg(long)]
    pub rate: Option<String>,
    /// Rate limit of traffic towards the container (overrides --rate).
    #[arg(long)]
    pub rate_in: Option<String>,
    /// Rate limit of traffic from the container (overrides --rate).
    #[arg(long)]
    pub rate_out: Option<String>,
    /// Monthly transfer allowance, both directions (bytes, or with k, m, g, t).
    #[arg(long)]
    pub allowance: Option<String>,
    /// What happens once the allowance is used: stop, or throttle[:RATE] (default 1mbit).
    #[arg(long)]
    pub allowance_policy: Option<String>,
    /// Signal that stop sends first.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds stop waits before SIGKILL.
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// Mount a volume: NAME:/PATH[:ro] for a named volume (made on first use; its data
    /// outlives the container), or /HOST/PATH:/PATH[:ro] (or ./rel) for a host path (admin only).
    /// Repeatable.
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:/PATH[:ro]")]
    pub volumes: Vec<String>,
    /// When to pull the image: missing (when it is not local), always, never.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Size of the writable layer (e.g. 512m), for an image or template container.
    #[arg(long)]
    pub disk: Option<String>,
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
    /// Seconds after a start during which failed healthchecks do not count.
    #[arg(long, default_value_t = 0)]
    pub health_start_period: u64,
    /// Seconds between healthchecks during the start period.
    #[arg(long, default_value_t = 1)]
    pub health_start_interval: u64,
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
        /// Delete the container once it ends (foreground only); an ephemeral one: its writes
        /// and state are not flushed to disk.
        #[arg(long)]
        rm: bool,
        /// Keep stdin open (needs -t).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Give the container a terminal (with -d: attach to it later with `condo attach`).
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
    /// Attach your terminal to a running container made with -t; Ctrl-P Ctrl-Q detaches.
    Attach {
        /// The container.
        container: String,
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
    /// Move a template's instance onto another build of its template, keeping its volumes and
    /// parameters; a snapshot comes first, and the container goes back to it if the new build
    /// does not become healthy.
    Rebase {
        /// The container.
        container: String,
        /// The build: NAME:VERSION or NAME@VERSION (NAME alone: the newest build).
        #[arg(long)]
        template: String,
        /// A parameter to add or change, NAME=VALUE (repeatable).
        #[arg(long = "param")]
        params: Vec<String>,
        /// Seconds the new build has to become healthy.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
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
        /// New rate limit, both directions (replaces the old limits whole).
        #[arg(long)]
        rate: Option<String>,
        /// New rate limit towards the container.
        #[arg(long)]
        rate_in: Option<String>,
        /// New rate limit from the container.
        #[arg(long)]
        rate_out: Option<String>,
        /// Lift every rate limit.
        #[arg(long, conflicts_with_all = ["rate", "rate_in", "rate_out"])]
        no_rate: bool,
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
    /// Pull an image from a registry, with progress; same as `condo image pull`.
    #[command(after_help = image::PULL_HELP)]
    Pull(image::PullArgs),
    /// Import images from a tar (OCI layout or `docker save`); same as `condo image import`.
    Import(image::ImportArgs),
    /// List images; same as `condo image ls`.
    Images(image::ListArgs),
    /// Write an image as an OCI image layout tar; same as `condo image export` and `condo export`.
    #[command(visible_alias = "export")]
    Save(image::ExportArgs),
    /// Remove images; same as `condo image rm`.
    Rmi(image::RmArgs),
    /// Images: pull, import, ls, inspect, export, rm, prune.
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// Named volumes: create, ls, inspect, rm, prune.
    Volume {
        #[command(subcommand)]
        command: volume::VolumeCommand,
    },
    /// Print a shell completion script: `source <(condo completion bash)`.
    #[command(after_help = "bash: source <(condo completion bash), or save it as \
        /usr/share/bash-completion/completions/condo\n\
        zsh:  condo completion zsh > \"${fpath[1]}/_condo\"\n\
        fish: condo completion fish > ~/.config/fish/completions/condo.fish")]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// Snapshots of a container made from an image or template.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Networks: create, ls, inspect, rm.
    Network {
        #[command(subcommand)]
        command: network::NetworkCommand,
    },
    /// The versions of condo and of the daemon it talks to.
    Version {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Format,
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
        /// The daemon: unix://PATH, tcp://HOST:PORT (HTTPS; with --ca, its CA is kept in the
        /// context) or http://HOST:PORT (default: --host, else the local socket).
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
    Ls {
        /// Output format (JSON leaves the tokens out).
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
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
    /// Take a snapshot of a container's root filesystem (a running one is frozen meanwhile).
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
