//! Start-up and shutdown: connect, migrate, start the listener, notifier, hub and HTTP
//! server, and stop them in order.
//!
//! Shutdown has three tokens: `draining` (readiness fails, serving goes on),
//! `intake_stopped` (queues take no more work; running workflows get the drain timeout) and
//! `shutdown` (SSE responses end with a retry hint, long-polls return, tasks stop). Open
//! streams watch `shutdown`, so they never hold up exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::notify::{Listener, ListenerState, Notifier};
use crate::runtime::RuntimeBuilder;
use crate::store::Store;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Postgres was unreachable or refused us.
    #[error("cannot connect to Postgres: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The security configuration is refused.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    /// The workflow runtime could not start.
    #[error("cannot start the workflow runtime: {0}")]
    Runtime(String),
    /// The DBOS source was configured but cannot be served.
    #[error("DBOS source: {0}")]
    Dbos(#[from] crate::dbos::SchemaError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running server.
pub struct RunningApp {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The bound admin address, if configured.
    pub admin_addr: Option<SocketAddr>,
    /// Cancel to stop at once (streams end, tasks stop).
    pub shutdown: CancellationToken,
    /// Shared state (store, hub, notifier, tokens).
    pub state: AppState,
    tracker: TaskTracker,
}

/// What a graceful shutdown saw.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    /// Workflows still running when the drain timeout ended (left PENDING for recovery).
    pub unfinished_workflows: usize,
    /// True if every task stopped within the final bound.
    pub clean: bool,
}

impl RunningApp {
    /// Stops without the readiness delay: queues stop, running workflows get the drain
    /// timeout, then everything stops.
    pub async fn stop(self) {
        let drain = self.state.config.drain_period();
        self.graceful_shutdown(std::time::Duration::ZERO, drain)
            .await;
    }

    /// Waits until the server has stopped (after `shutdown` fires).
    pub async fn wait(self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// The graceful sequence: readiness fails at once; serving goes on for `delay`; then
    /// queues stop taking work and running workflows get `drain`; then streams end and
    /// tasks stop (bounded, so a stuck client never holds up exit).
    pub async fn graceful_shutdown(self, delay: Duration, drain: Duration) -> ShutdownReport {
        self.state.draining.cancel();
        tracing::info!(
            delay_s = delay.as_secs_f64(),
            "draining: readiness failing, still serving"
        );
        tokio::time::sleep(delay).await;
        self.state.intake_stopped.cancel();
        let workflows = self.state.workflows.clone();
        workflows.close();
        tracing::info!(
            running = workflows.len(),
            drain_s = drain.as_secs_f64(),
            "queues stopped; draining workflows"
        );
        let drained = tokio::time::timeout(drain, workflows.wait()).await.is_ok();
        let unfinished = if drained { 0 } else { workflows.len() };
        if unfinished > 0 {
            tracing::warn!(
                unfinished,
                "drain timeout: unfinished workflows stay PENDING for recovery"
            );
        }
        self.shutdown.cancel();
        self.tracker.close();
        let clean = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_ok();
        ShutdownReport {
            unfinished_workflows: unfinished,
            clean,
        }
    }
}

/// Connects, migrates and starts serving.
pub async fn start(config: Config) -> Result<RunningApp, StartError> {
    start_with(config, None).await
}

/// Like [`start`], and runs the workflows and queues of `workflows` in this process.
///
/// Start-up runs in named phases: connect and migrate, start the wake-up path (hub,
/// notifier, LISTEN connection), start background upkeep, launch the workflow runtime,
/// then bind and serve.
pub async fn start_with(
    config: Config,
    workflows: Option<RuntimeBuilder>,
) -> Result<RunningApp, StartError> {
    let auth = Arc::new(crate::auth::Auth::from_config(&config)?);
    let store = Store::connect(&config.database_url(), config.pool_size).await?;
    store.migrate().await?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let metrics = Metrics::new();
    let wakeups = start_wakeups(&config, &store, &metrics, &tracker, &shutdown)?;
    let dbos = start_upkeep(&config, &store, &metrics, &wakeups.hub, &tracker, &shutdown).await?;
    let workflows = launch_workflows(workflows, &config, &store, &wakeups).await?;

    let tcp = bind(config.addr).await?;
    let addr = local_addr(&tcp, config.addr)?;
    let admin = match config.admin_addr {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let state = AppState {
        store,
        hub: wakeups.hub,
        notifier: wakeups.notifier,
        listener: wakeups.listener,
        sse_slots: Arc::new(Semaphore::new(config.max_sse)),
        heartbeat: http::sse::Heartbeat::start(
            config.heartbeat_period(),
            &tracker,
            shutdown.clone(),
        ),
        config: Arc::new(config),
        shutdown: shutdown.clone(),
        draining: CancellationToken::new(),
        intake_stopped: workflows.intake_stopped,
        workflows: workflows.tasks,
        metrics,
        auth,
        started: Instant::now(),
        runtime: workflows.runtime,
        dbos,
        replicas: wakeups.replicas,
    };
    let admin_addr = serve(&state, &tracker, tcp, admin, addr)?;
    tracing::info!(%addr, ?admin_addr, "flowgate listening");
    Ok(RunningApp {
        addr,
        admin_addr,
        shutdown,
        state,
        tracker,
    })
}

/// The wake-up path: where notes come from and where they are fanned out.
struct Wakeups {
    hub: Hub,
    notifier: Notifier,
    listener: Arc<ListenerState>,
    replicas: Option<crate::replica::Replicas>,
}

/// Starts the standby monitor (if configured), the hub on top of it, the notifier of this
/// process's own writes and the LISTEN connection for everyone else's.
fn start_wakeups(
    config: &Config,
    store: &Store,
    metrics: &Metrics,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Wakeups, StartError> {
    let origin = format!("{:08x}", rand::random::<u32>());
    let replicas = crate::replica::start(config, store, metrics, tracker, shutdown)?;
    let hub = match &replicas {
        Some(r) => Hub::with_source(
            store.clone(),
            crate::hub::Source::Replicated(r.clone()),
            shutdown.clone(),
            metrics.clone(),
        ),
        None => Hub::new(store.clone(), shutdown.clone(), metrics.clone()),
    };
    let notifier = Notifier::new(hub.clone(), origin.clone());
    let listener_state = Arc::new(ListenerState::default());
    let pg_config = crate::notify::listener::listen_config(&config.database_url())
        .map_err(|e: tokio_postgres::Error| sqlx::Error::Configuration(e.into()))?;
    let listener = Listener {
        config: pg_config,
        hub: hub.clone(),
        origin,
        state: listener_state.clone(),
    };
    tracker.spawn(listener.run(shutdown.clone()));
    tracker.spawn(notifier.clone().run(store.clone(), shutdown.clone()));
    Ok(Wakeups {
        hub,
        notifier,
        listener: listener_state,
        replicas,
    })
}

/// Starts the background upkeep: the hub's safety re-check, the Durable Streams expiry
/// sweep, the DBOS source (if configured) and the retention sweeper.
async fn start_upkeep(
    config: &Config,
    store: &Store,
    metrics: &Metrics,
    hub: &Hub,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Option<crate::dbos::Dbos>, StartError> {
    tracker.spawn(hub.clone().safety_recheck(config.recheck_period()));
    crate::http::durable_streams::spawn_sweep(tracker, store.pool.clone(), shutdown.clone());
    let dbos = crate::dbos::start(&config.dbos, store, metrics, tracker, shutdown).await?;
    let sweeper = crate::lifecycle::Sweeper::new(
        store.pool.clone(),
        config.retention.clone(),
        Some(metrics.clone()),
    );
    tracker.spawn(crate::lifecycle::sweep_loop(sweeper, shutdown.clone()));
    Ok(dbos)
}

/// The workflow runtime of this process and what stops it.
struct Workflows {
    /// Fires when queues must stop taking work.
    intake_stopped: CancellationToken,
    /// The workflows' own tasks, so the shutdown sequence can give them the drain timeout.
    tasks: TaskTracker,
    runtime: Option<crate::runtime::Runtime>,
}

/// Launches the workflows and queues of `builder`, if any.
async fn launch_workflows(
    builder: Option<RuntimeBuilder>,
    config: &Config,
    store: &Store,
    wakeups: &Wakeups,
) -> Result<Workflows, StartError> {
    let intake_stopped = CancellationToken::new();
    let tasks = TaskTracker::new();
    let runtime = match builder {
        Some(b) => Some(
            crate::runtime::launch_from_config(
                b,
                config,
                store,
                &wakeups.hub,
                &wakeups.notifier,
                &intake_stopped,
                &tasks,
            )
            .await
            .map_err(StartError::Runtime)?,
        ),
        None => None,
    };
    Ok(Workflows {
        intake_stopped,
        tasks,
        runtime,
    })
}

/// Serves the API on `tcp` and the admin routes on `admin`, if bound; returns the admin
/// address.
fn serve(
    state: &AppState,
    tracker: &TaskTracker,
    tcp: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    addr: SocketAddr,
) -> Result<Option<SocketAddr>, StartError> {
    let conn = &state.config.conn;
    let shutdown = &state.shutdown;
    let m = &state.metrics;
    let api = http::router(state.clone());
    http::server::serve(tracker, tcp, api, shutdown.clone(), conn, m.clone());
    let Some(l) = admin else {
        return Ok(None);
    };
    let a = local_addr(&l, l.local_addr().unwrap_or(addr))?;
    let routes = http::admin_router(state.clone());
    http::server::serve(tracker, l, routes, shutdown.clone(), conn, m.clone());
    Ok(Some(a))
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(l: &tokio::net::TcpListener, want: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Bind { addr: want, source })
}
