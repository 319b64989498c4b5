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
pub async fn start_with(
    config: Config,
    workflows: Option<RuntimeBuilder>,
) -> Result<RunningApp, StartError> {
    let auth = Arc::new(crate::auth::Auth::from_config(&config)?);
    let database_url = config.database_url();
    let store = Store::connect(&database_url, config.pool_size).await?;
    store.migrate().await?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let origin = format!("{:08x}", rand::random::<u32>());
    let metrics = Metrics::new();

    let replicas = crate::replica::start(&config, &store, &metrics, &tracker, &shutdown)?;
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
    let pg_config = crate::notify::listener::listen_config(&database_url)
        .map_err(|e: tokio_postgres::Error| sqlx::Error::Configuration(e.into()))?;
    let listener = Listener {
        config: pg_config,
        hub: hub.clone(),
        origin,
        state: listener_state.clone(),
    };

    tracker.spawn(listener.run(shutdown.clone()));
    tracker.spawn(notifier.clone().run(store.pool.clone(), shutdown.clone()));
    tracker.spawn(hub.clone().safety_recheck(config.recheck_period()));
    crate::http::durable_streams::spawn_sweep(&tracker, store.pool.clone(), shutdown.clone());
    let dbos = crate::dbos::start(&config.dbos, &store, &metrics, &tracker, &shutdown).await?;
    let sweeper = crate::lifecycle::Sweeper::new(
        store.pool.clone(),
        config.retention.clone(),
        Some(metrics.clone()),
    );
    tracker.spawn(crate::lifecycle::sweep_loop(sweeper, shutdown.clone()));

    // Workflows stop taking work when `intake_stopped` fires; their tasks live in their own
    // tracker so the shutdown sequence can give them the drain timeout.
    let intake_stopped = CancellationToken::new();
    let workflow_tasks = TaskTracker::new();
    let runtime = match workflows {
        Some(b) => Some(
            crate::runtime::launch_from_config(
                b,
                &config,
                &store,
                &hub,
                &notifier,
                &intake_stopped,
                &workflow_tasks,
            )
            .await
            .map_err(StartError::Runtime)?,
        ),
        None => None,
    };

    let tcp = bind(config.addr).await?;
    let addr = local_addr(&tcp, config.addr)?;
    let admin = match config.admin_addr {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let state = AppState {
        store,
        hub,
        notifier,
        listener: listener_state,
        sse_slots: Arc::new(Semaphore::new(config.max_sse)),
        heartbeat: http::sse::Heartbeat::start(
            config.heartbeat_period(),
            &tracker,
            shutdown.clone(),
        ),
        config: Arc::new(config),
        shutdown: shutdown.clone(),
        draining: CancellationToken::new(),
        intake_stopped,
        workflows: workflow_tasks,
        metrics,
        auth,
        started: Instant::now(),
        runtime,
        dbos,
        replicas,
    };
    let conn = state.config.conn.clone();
    let m = state.metrics.clone();
    http::server::serve(
        &tracker,
        tcp,
        http::router(state.clone()),
        shutdown.clone(),
        &conn,
        m.clone(),
    );
    let admin_addr = match admin {
        Some(l) => {
            let a = local_addr(&l, l.local_addr().unwrap_or(addr))?;
            http::server::serve(
                &tracker,
                l,
                http::admin_router(state.clone()),
                shutdown.clone(),
                &conn,
                m,
            );
            Some(a)
        }
        None => None,
    };
    tracing::info!(%addr, ?admin_addr, "flowgate listening");
    Ok(RunningApp {
        addr,
        admin_addr,
        shutdown,
        state,
        tracker,
    })
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
