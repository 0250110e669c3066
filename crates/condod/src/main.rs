//! `condod`: Condo's daemon. An HTTP API on a unix socket (and on TCP when asked), state in
//! SQLite, one `condo-monitor` per running container, supervision and events.

mod api;
mod auth;
mod db;
mod error;
mod fault;
mod health;
mod idmount;
mod idrange;
mod logs;
mod monitor;
mod network;
mod quota;
mod spec;
mod storage;
mod supervisor;
mod tls;
mod volumes;
mod web;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use condo_api::Event;
use tokio::sync::broadcast;

/// Command line of condod.
#[derive(Parser, Debug)]
#[command(
    name = "condod",
    version,
    about = "Condo's daemon: containers over an HTTP API"
)]
struct Cli {
    /// Directory for all state: database, containers, logs, and the socket condod.sock.
    #[arg(long, default_value = "/var/lib/condo", env = "CONDOD_ROOT")]
    root: PathBuf,
    /// Also listen on TCP: `tcp://HOST:PORT` serves HTTPS (TLS from the daemon's own CA, made
    /// at first start in ROOT/tls/ca.pem, unless --tls-cert is given); `http://HOST:PORT`
    /// serves plain HTTP, on a loopback address only (for a TLS proxy in front). Every request
    /// there needs a token.
    #[arg(long)]
    listen: Option<String>,
    /// The TLS certificate chain (PEM) to serve instead of one from the daemon's CA.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// More names (DNS names or addresses, comma-separated) the daemon's certificate is for,
    /// beside localhost, the loopback addresses, the host's name and the listen address.
    #[arg(long, value_delimiter = ',')]
    tls_san: Vec<String>,
    /// The condo-monitor binary (default: beside condod, else from PATH).
    #[arg(long)]
    monitor: Option<PathBuf>,
    /// The template library, for `condo template build NAME` (default: /usr/share/condo/templates).
    #[arg(long, env = "CONDOD_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Crash injection for tests: abort when an operation reaches this step.
    #[arg(long, env = "CONDOD_FAULT", hide = true)]
    fault: Option<String>,
    /// Host ports containers may publish, as `PORT` or `LOW-HIGH` ranges separated by commas.
    #[arg(long, default_value = "1024-65535", env = "CONDOD_PUBLISH_PORTS")]
    publish_ports: String,
    /// Host addresses (CIDRs, comma-separated) ports may be published on; with a list,
    /// publishing on every address is refused. Default: any address.
    #[arg(long, env = "CONDOD_PUBLISH_ADDRESSES")]
    publish_addresses: Option<String>,
    /// Days the audit log is kept (0: for ever).
    #[arg(long, default_value_t = 400, env = "CONDOD_AUDIT_DAYS")]
    audit_days: u32,
    /// Days events are kept for `condo events --since` (0: for ever).
    #[arg(long, default_value_t = 30, env = "CONDOD_EVENT_DAYS")]
    event_days: u32,
    /// Log filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info", env = "CONDOD_LOG")]
    log: String,
}

/// Per-container serialisation of API operations.
#[derive(Default)]
pub struct Slot {
    /// Held for the length of one lifecycle operation.
    pub ops: tokio::sync::Mutex<()>,
}

/// The daemon's shared state.
pub struct App {
    /// The database.
    pub db: db::Db,
    /// Where things live.
    pub paths: monitor::Paths,
    /// Live events for streams and waiters.
    pub events: broadcast::Sender<Event>,
    /// Per-container locks.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// When the daemon started.
    pub started: Instant,
    /// Images, templates and instances.
    pub storage: storage::Storage,
    /// Networks, and the containers' places on them.
    pub network: network::Hub,
    /// Browsers logged in to the dashboard.
    pub sessions: web::Sessions,
    /// Held (cloned) by each removal still under way after its answer (an ephemeral
    /// container's files): the daemon lets them end before it stops.
    pub removals: Arc<()>,
}

impl App {
    /// The lock slot of container `id`.
    pub fn slot(&self, id: &str) -> Arc<Slot> {
        let mut m = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(id.to_string()).or_default().clone()
    }

    /// Drops the slot of a deleted container.
    pub fn forget(&self, id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Publishes an event already stored in the database.
    pub fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }
}

/// A helper binary beside condod, else from PATH.
fn find_beside(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.with_file_name(name);
    if beside.exists() {
        return Some(beside);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
}

/// Without an installed condo-build-step, the monitor plays its part when called by that name
/// (both create one container from a single-threaded process): a link under the root.
fn build_step_link(root: &std::path::Path, monitor: &std::path::Path) -> Result<PathBuf> {
    let link = root.join("storage").join("condo-build-step");
    std::fs::create_dir_all(root.join("storage"))?;
    let monitor = std::fs::canonicalize(monitor)
        .with_context(|| format!("cannot find {}", monitor.display()))?;
    if std::fs::read_link(&link).ok().as_deref() != Some(monitor.as_path()) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&monitor, &link)
            .with_context(|| format!("cannot create {}", link.display()))?;
    }
    Ok(link)
}

fn find_monitor(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    match find_beside("condo-monitor") {
        Some(p) => Ok(p),
        None => bail!("condo-monitor not found beside condod or in PATH (use --monitor)"),
    }
}

/// Lifts the soft limit on open files to the hard one: each watched container holds a pidfd.
fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    if l.maximum.is_some() && l.current != l.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: l.maximum,
                maximum: l.maximum,
            },
        );
    }
}

/// The TCP listener: HTTPS, or plain HTTP on loopback.
enum TcpServe {
    Tls(tls::TlsListener),
    Plain(tokio::net::TcpListener),
}

/// Reads `--listen`: `tcp://HOST:PORT` (or `https://`) with TLS, `http://HOST:PORT` without,
/// refused unless HOST is a loopback address. Checked before the daemon does anything.
fn parse_listen(listen: &str) -> Result<(bool, std::net::SocketAddr)> {
    use std::net::ToSocketAddrs;
    let (tls, addr) = if let Some(a) = listen
        .strip_prefix("tcp://")
        .or(listen.strip_prefix("https://"))
    {
        (true, a)
    } else if let Some(a) = listen.strip_prefix("http://") {
        (false, a)
    } else {
        bail!("--listen {listen}: use tcp://HOST:PORT (HTTPS) or http://127.0.0.1:PORT")
    };
    let addr = addr.trim_end_matches('/');
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("--listen {listen}: {addr} has no address"))?;
    if !tls && !sock.ip().is_loopback() {
        bail!(
            "--listen {listen}: plain HTTP would carry tokens in the clear; use tcp://{addr} \
             (HTTPS), or a loopback address behind a TLS proxy"
        );
    }
    Ok((tls, sock))
}

/// Binds the TCP listener `parse_listen` read.
async fn bind_tcp(
    cli: &Cli,
    root: &std::path::Path,
    (tls, sock): (bool, std::net::SocketAddr),
) -> Result<TcpServe> {
    let cfg = if tls {
        let id = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => tls::Identity::Given {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => tls::Identity::Own {
                extra_names: cli.tls_san.clone(),
            },
        };
        Some(tls::server_config(root, sock, &id)?)
    } else {
        None
    };
    let tcp = tokio::net::TcpListener::bind(sock)
        .await
        .with_context(|| format!("cannot listen on {sock}"))?;
    let bound = tcp.local_addr()?;
    Ok(match cfg {
        Some(cfg) => {
            tracing::info!(
                "listening on https://{bound} (clients trust {})",
                if cli.tls_cert.is_some() {
                    "--tls-cert's issuer".to_string()
                } else {
                    tls::ca_path(root).display().to_string()
                }
            );
            TcpServe::Tls(tls::TlsListener::new(tcp, cfg)?)
        }
        None => {
            tracing::info!("listening on http://{bound}");
            TcpServe::Plain(tcp)
        }
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // Descriptors we inherited must not reach monitors and, through them, containers.
    let _ = condo_sys::process::cloexec_from(3);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    fault::arm(cli.fault.clone())?;
    let listen = cli.listen.as_deref().map(parse_listen).transpose()?;
    raise_nofile();
    let root = &cli.root;
    std::fs::create_dir_all(root.join("containers"))
        .with_context(|| format!("cannot create {}", root.display()))?;
    let root = std::fs::canonicalize(root)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))?;
    let db = db::Db::open(&root.join("condod.db"))?;
    auth::ensure_admin_token(&db, &root.join("admin.token"))?;
    let paths = monitor::Paths {
        root: root.clone(),
        runtime: root.join("runtime"),
        monitor_bin: find_monitor(cli.monitor.clone())?,
    };
    let library = cli
        .templates
        .clone()
        .or_else(|| Some(PathBuf::from("/usr/share/condo/templates")).filter(|p| p.is_dir()));
    let helper = match find_beside("condo-build-step") {
        Some(h) => h,
        None => build_step_link(&root, &paths.monitor_bin)?,
    };
    let storage = storage::Storage::open(&root, helper, library)?;
    let policy = network::port_policy(Some(&cli.publish_ports), cli.publish_addresses.as_deref())?;
    let network = network::Hub::open(&root, policy).context("networks")?;
    let app = Arc::new(App {
        db,
        paths,
        events: broadcast::channel(1024).0,
        slots: Mutex::new(HashMap::new()),
        started: Instant::now(),
        storage,
        network,
        sessions: web::Sessions::default(),
        removals: Arc::new(()),
    });
    supervisor::reconcile(&app)
        .await
        .context("reconciliation")?;
    network::start(&app).await.context("networks")?;
    let a = app.clone();
    tokio::task::spawn_blocking(move || storage::remove_orphans(&a)).await?;
    let a = app.clone();
    tokio::task::spawn_blocking(move || volumes::remove_orphans(&a)).await?;
    let keep = db::Retention {
        audit_days: cli.audit_days,
        event_days: cli.event_days,
    };
    let a = app.clone();
    tokio::spawn(async move {
        loop {
            let b = a.clone();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            match tokio::task::spawn_blocking(move || db::prune_history(&b.db, keep, now)).await {
                Ok(Ok((0, 0))) => {}
                Ok(Ok((audit, events))) => {
                    tracing::info!(
                        "pruned {audit} audit rows and {events} events past their retention"
                    )
                }
                Ok(Err(e)) => tracing::warn!("cannot prune the audit log and events: {e}"),
                Err(e) => tracing::warn!("cannot prune the audit log and events: {e}"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    let freed = idrange::release_orphans(&app.db.lock()).context("id ranges")?;
    if freed > 0 {
        tracing::info!("gave back {freed} id ranges of containers never made");
    }

    // Bind every listener before serving any: once the socket answers, the TCP port does too.
    let tcp = match listen {
        Some(l) => Some(bind_tcp(&cli, &root, l).await?),
        None => None,
    };
    let sock = root.join("condod.sock");
    let _ = std::fs::remove_file(&sock);
    let unix = tokio::net::UnixListener::bind(&sock)
        .with_context(|| format!("cannot listen on {}", sock.display()))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    let router = api::router(app.clone());
    let mut servers = tokio::task::JoinSet::new();
    let r = router.clone();
    match tcp {
        Some(TcpServe::Tls(l)) => {
            servers.spawn(async move {
                axum::serve(l, r.into_make_service_with_connect_info::<auth::Peer>()).await
            });
        }
        Some(TcpServe::Plain(l)) => {
            servers.spawn(async move {
                axum::serve(l, r.into_make_service_with_connect_info::<auth::Peer>()).await
            });
        }
        None => {}
    }
    let r = router.clone();
    servers.spawn(async move {
        axum::serve(unix, r.into_make_service_with_connect_info::<auth::Peer>()).await
    });
    tracing::info!("condod ready on unix://{}", sock.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = servers.join_next() => {
            if let Some(Ok(Err(e))) = r {
                return Err(e).context("server");
            }
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // Files of containers deleted just before go first (else the next start removes them).
    let until = Instant::now() + std::time::Duration::from_secs(10);
    while Arc::strong_count(&app.removals) > 1 && Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Containers keep running: their monitors do not depend on us.
    tracing::info!("condod stopping; containers keep running");
    Ok(())
}
