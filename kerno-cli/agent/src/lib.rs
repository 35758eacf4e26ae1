//! The node agent behind `kerno start`.
//!
//! It loads and attaches the probes once, takes a sample from every collector each second
//! and keeps them for a sliding window (5 minutes by default), and serves:
//!
//! - on the TCP address (default `:9090`): `/metrics` (Prometheus text or OpenMetrics, by
//!   the `Accept` header), `/healthz` (200 while the sampling loop completes a step every
//!   few seconds, 503 with the reason when it is stuck) and `/readyz` (503 until the probes
//!   are attached and `/metrics` has the first interval; a JSON body with each probe
//!   domain's state, degraded ones with their reason);
//! - on a unix socket (default `/run/kerno/agent.sock`, mode 0600): the same, plus
//!   `/signals?window=30s` (the window's [`kerno_core::Signals`], built by the engine
//!   from the kept samples exactly as a standalone `kerno doctor` builds its own) and
//!   `/doctor?window=30s` (the JSON report with the agent's rules), and `/levels?window=1h`
//!   (the [`kerno_core::Signals`] of the levels `kerno predict` projects, recorded every
//!   15 s for an hour by [`kerno_core::predict::engine`]'s collectors, no eBPF involved).
//!
//! It computes nothing of its own: windows come from [`kerno_core::Engine::signals_from`],
//! findings from the rules it is given, and metrics are those windows added up
//! (docs/metrics.md). `kerno doctor` asks it first with [`fetch_signals`] and evaluates the
//! window with its own rules and thresholds.
//!
//! SIGTERM or SIGINT stops serving and drops the engine, which detaches every program.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod client;
mod history;
pub mod metrics;
pub mod otlp;
mod remote;
mod server;
mod state;
mod totals;

use std::{
    net::{SocketAddr, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

pub use client::{ClientError, fetch_levels, fetch_readiness, fetch_signals, get};
use kerno_core::{CoreError, Engine, KernelOptions, Rule, Thresholds};
pub use otlp::OtlpOptions;
pub use remote::{ClusterOptions, DEFAULT_PORT, ask_cluster, resolve_agents};
use thiserror::Error;
use tokio::signal::unix::{SignalKind, signal};

use crate::state::{Phase, Shared, lock};

/// The default unix socket.
pub const DEFAULT_SOCKET: &str = "/run/kerno/agent.sock";

/// What can stop the agent from running.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The listen address is not an address.
    #[error("invalid listen address {0:?} (examples: :9090, 127.0.0.1:9090, [::1]:9090)")]
    Address(String),
    /// The TCP address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Another agent answers on the socket.
    #[error("another kerno agent is already running (it answers on {0})")]
    AlreadyRunning(PathBuf),
    /// The unix socket could not be created.
    #[error("cannot create the socket {path}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime or the signal handlers could not be set up.
    #[error("cannot start the agent's runtime")]
    Runtime(#[source] std::io::Error),
    /// The bearer-token file could not be read or holds no token.
    #[error("cannot read the token from {path}: {reason}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The probes could not be loaded at all (privileges, no BTF, bad configuration).
    #[error("cannot start the probes")]
    Probes(#[source] CoreError),
}

/// How to run the agent.
pub struct AgentOptions {
    /// TCP address for `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// Unix socket for local `kerno doctor` requests.
    pub socket: PathBuf,
    /// How much history to keep (at least the longest window a doctor may ask for, 5 min).
    pub window: Duration,
    /// Which probes to load.
    pub kernel: KernelOptions,
    /// Rules for the `kerno_findings_firing` gauges and `/doctor`.
    pub rules: Vec<Box<dyn Rule>>,
    /// Their thresholds.
    pub thresholds: Thresholds,
    /// The window the findings gauges are evaluated over.
    pub findings_window: Duration,
    /// How often counters and gauges are brought up to date.
    pub update_every: Duration,
    /// The AI post-processor's settings: `/doctor?ai=1` on the unix socket asks the
    /// provider only when `enabled`.
    pub ai: kerno_core::config::AiConfig,
    /// How often the levels `kerno predict` projects are recorded (an hour is kept).
    pub levels_every: Duration,
    /// Serve `/doctor` on the TCP address too, to requests bearing this bearer token
    /// (`kerno doctor --cluster`); `None`: only on the unix socket.
    pub doctor_token: Option<String>,
    /// Push metrics and findings over OTLP/HTTP, when set.
    pub otlp: Option<OtlpOptions>,
}

/// The bearer token in `path` (a mounted Secret): its content without surrounding
/// whitespace, which must not be empty.
pub fn read_token(path: &Path) -> Result<String, AgentError> {
    let text = std::fs::read_to_string(path).map_err(|source| AgentError::Token {
        path: path.to_path_buf(),
        reason: source.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(AgentError::Token {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    if token.chars().any(|c| c.is_control()) {
        return Err(AgentError::Token {
            path: path.to_path_buf(),
            reason: "a token is one line of printable characters".into(),
        });
    }
    Ok(token.to_string())
}

/// Parse a listen address: `:9090` (all IPv4 interfaces), `127.0.0.1:9090`, `[::]:9090`,
/// `localhost:9090`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, AgentError> {
    let s = s.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| AgentError::Address(s.to_string()))
}

/// Create the socket, replacing a stale one; refuse when an agent answers on it.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, AgentError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |source| AgentError::Socket {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // 0755 whatever the umask: only the agent's user (root) may put a socket there.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(err)?;
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(AgentError::AlreadyRunning(path.to_path_buf()));
    }
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).map_err(err)?;
    }
    // Bound in a private (0700) directory, made 0600 there, then renamed into place: at no
    // moment can another user connect to it, whatever the umask. A directory left by an
    // agent killed in between is removed by the next.
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    let private = dir.join(format!(".{name}.bind"));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(err)?;
    let staged = private.join("agent.sock");
    let bound = std::os::unix::net::UnixListener::bind(&staged).and_then(|l| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(l)
    });
    let _ = std::fs::remove_dir_all(&private);
    let l = bound.map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    tokio::net::UnixListener::from_std(l).map_err(err)
}

/// Run the agent until SIGTERM or SIGINT. Returns after every program is detached.
pub fn run(opts: AgentOptions) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .map_err(AgentError::Runtime)?;
    let result = rt.block_on(run_async(opts));
    // A probe load still in flight (a signal came during it) finishes and detaches in the
    // background; the process exit closes its descriptors.
    rt.shutdown_background();
    result
}

async fn run_async(opts: AgentOptions) -> Result<(), AgentError> {
    // Fail before creating anything when the probes could never load.
    kerno_core::check_privileges().map_err(AgentError::Probes)?;
    if cfg!(not(debug_assertions)) && std::env::var_os("KERNO_FAIL_SAMPLER").is_some() {
        tracing::warn!("KERNO_FAIL_SAMPLER is ignored: it is a test fault of debug builds only");
    }
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Runtime)?;
    let tcp = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = tcp.local_addr().unwrap_or(opts.listen);
    let unix = bind_socket(&opts.socket)?;
    // The host root and node name before the host is described (the engine sets them
    // again when it loads).
    kerno_core::host::configure(
        kerno_core::host::HostRoot::new(opts.kernel.host_root.clone().unwrap_or_default()),
        opts.kernel.node_name.clone(),
    );
    let mut shared = Shared::new(
        opts.window,
        opts.findings_window,
        opts.update_every,
        opts.rules,
        opts.thresholds,
    )
    .with_ai(opts.ai)
    .with_doctor_token(opts.doctor_token.clone());
    let otlp_stats = opts
        .otlp
        .as_ref()
        .map(|_| Arc::new(otlp::OtlpStats::default()));
    if let Some(s) = &otlp_stats {
        shared = shared.with_otlp(s.clone());
    }
    let shared = Arc::new(shared);
    let levels = {
        let shared = shared.clone();
        let every = opts.levels_every;
        std::thread::Builder::new()
            .name("kerno-levels".into())
            .spawn(move || state::level_sampler(shared, every))
            .map_err(AgentError::Runtime)?
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(server::serve(tcp, unix, shared.clone(), stop_rx));
    let doctor_too = if opts.doctor_token.is_some() {
        " /doctor with its bearer token"
    } else {
        ""
    };
    tracing::info!(
        http = %addr,
        socket = %opts.socket.display(),
        "agent serving http://{addr} (/metrics /healthz /readyz{doctor_too}) and {} (/signals /doctor); loading probes",
        opts.socket.display()
    );

    let kernel = opts.kernel.clone();
    let load = tokio::task::spawn_blocking(move || Engine::kernel(&kernel));
    let loaded = tokio::select! {
        r = load => Some(r),
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    let engine = match loaded {
        None => None,
        Some(Ok(Ok(engine))) => Some(engine),
        Some(Ok(Err(e))) => {
            stop(&shared, &stop_tx, Some(server), &opts.socket).await;
            return Err(AgentError::Probes(e));
        }
        Some(Err(join)) => {
            stop(&shared, &stop_tx, Some(server), &opts.socket).await;
            return Err(AgentError::Runtime(std::io::Error::other(join)));
        }
    };
    let Some(engine) = engine else {
        stop(&shared, &stop_tx, Some(server), &opts.socket).await;
        return Ok(());
    };
    for d in engine.degraded() {
        tracing::warn!(domain = %d.domain, reason = %d.reason, "degraded: {}: {}", d.domain, d.reason);
    }
    shared.install(engine);
    let sampler = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("kerno-sampler".into())
            .spawn(move || state::sampler(shared))
            .map_err(AgentError::Runtime)?
    };
    // Its own thread and HTTP client: a receiver that is down or slow holds up only the
    // next push.
    let exporter = match (opts.otlp, otlp_stats) {
        (Some(o), Some(stats)) => {
            tracing::info!(
                endpoint = %o.endpoint,
                interval_secs = o.interval.as_secs_f64(),
                "pushing metrics and findings over OTLP/HTTP to {} every {} s",
                o.endpoint,
                o.interval.as_secs_f64()
            );
            let shared = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("kerno-otlp".into())
                    .spawn(move || otlp::exporter(shared, o, stats))
                    .map_err(AgentError::Runtime)?,
            )
        }
        _ => None,
    };
    tracing::info!(
        window_secs = opts.window.as_secs(),
        "probes attached; keeping {} s of 1 s samples",
        opts.window.as_secs()
    );

    let served = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        r = &mut server => Some(r),
    };
    let server = match served {
        None => Some(server),
        Some(r) => {
            // The server stopped on its own: say why, and stop too.
            tracing::error!("the HTTP server stopped: {r:?}");
            None
        }
    };
    shared.stop.store(true, Ordering::SeqCst);
    // The exporter is not waited for: a push in flight to a slow receiver must not hold
    // up the stop (it sees `stop` and ends after that push).
    drop(exporter);
    let _ = tokio::task::spawn_blocking(move || (sampler.join(), levels.join())).await;
    stop(&shared, &stop_tx, server, &opts.socket).await;
    Ok(())
}

/// Stop serving (in-flight requests get a moment), detach every program, remove the socket.
async fn stop(
    shared: &Shared,
    stop_tx: &tokio::sync::watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    socket: &Path,
) {
    shared.stop.store(true, Ordering::SeqCst);
    lock(&shared.status).phase = Phase::Stopping;
    let _ = stop_tx.send(true);
    if let Some(server) = server {
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    // Dropping the engine drops every reader, the last owner of the loaded object: every
    // program and link is released.
    let engine = lock(&shared.engine).take();
    let had_probes = engine.is_some();
    drop(engine);
    let _ = std::fs::remove_file(socket);
    if had_probes {
        tracing::info!("agent stopped; probes detached");
    }
}
