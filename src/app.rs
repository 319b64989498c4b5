//! Start-up and shutdown: connect, migrate, start the listener, notifier, hub and HTTP
//! server, and stop them together.
//!
//! Everything runs under one [`CancellationToken`]; open SSE responses watch it, so a
//! shutdown never waits on a client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::hub::Hub;
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
    /// The workflow runtime could not start.
    #[error("cannot start the workflow runtime: {0}")]
    Runtime(String),
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
    /// Cancel to shut down.
    pub shutdown: CancellationToken,
    /// Shared state (store, hub, notifier).
    pub state: AppState,
    tracker: TaskTracker,
}

impl RunningApp {
    /// Shuts down and waits for every task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Waits until the server has stopped (after `shutdown` fires).
    pub async fn wait(self) {
        self.tracker.close();
        self.tracker.wait().await;
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
    let store = Store::connect(&config.database_url, config.pool_size).await?;
    store.migrate().await?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let origin = format!("{:08x}", rand::random::<u32>());

    let hub = Hub::new(store.clone(), shutdown.clone());
    let notifier = Notifier::new(hub.clone(), origin.clone());
    let listener_state = Arc::new(ListenerState::default());
    let pg_config: tokio_postgres::Config = config
        .database_url
        .parse()
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

    let runtime = match workflows {
        Some(b) => Some(
            crate::runtime::launch_from_config(
                b, &config, &store, &hub, &notifier, &shutdown, &tracker,
            )
            .await?,
        ),
        None => None,
    };

    let tcp = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = tcp.local_addr().map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    let state = AppState {
        store,
        hub,
        notifier,
        listener: listener_state,
        config: Arc::new(config),
        shutdown: shutdown.clone(),
        started: Instant::now(),
        runtime,
    };
    let router = http::router(state.clone());
    let token = shutdown.clone();
    tracker.spawn(async move {
        let served = axum::serve(tcp, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http server failed");
        }
    });
    tracing::info!(%addr, "flowgate listening");
    Ok(RunningApp {
        addr,
        shutdown,
        state,
        tracker,
    })
}
