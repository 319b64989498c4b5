//! The HTTP surface (axum): each module owns its routes; this one merges them and holds the
//! shared state.

pub mod access;
pub mod approvals;
pub mod cors;
pub mod dbos;
pub mod durable_streams;
pub mod events;
pub mod extract;
pub mod finish;
pub mod health;
pub mod live;
pub mod messages;
pub mod openapi;
pub mod page;
pub mod panics;
pub mod run_list;
pub mod runs;
pub mod server;
pub mod share;
pub mod sse;
pub mod streams;
pub mod tokens;
pub mod values;
pub mod workflows;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::notify::{ListenerState, Notifier};
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// In-process fan-out.
    pub hub: Hub,
    /// Publishes our own writes.
    pub notifier: Notifier,
    /// Listener health.
    pub listener: Arc<ListenerState>,
    /// Settings.
    pub config: Arc<Config>,
    /// Fires on shutdown; SSE responses and long-polls end when it does.
    pub shutdown: CancellationToken,
    /// Fires at the first signal: readiness fails while serving goes on.
    pub draining: CancellationToken,
    /// Fires after the shutdown delay: queues stop taking work.
    pub intake_stopped: CancellationToken,
    /// Running workflows; shutdown waits for them up to the drain timeout.
    pub workflows: TaskTracker,
    /// Permits for concurrent SSE responses.
    pub sse_slots: Arc<Semaphore>,
    /// The shared SSE heartbeat.
    pub heartbeat: sse::Heartbeat,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Keys, tokens and limits.
    pub auth: Arc<crate::auth::Auth>,
    /// Process start.
    pub started: Instant,
    /// The workflow runtime, when this process runs workflows.
    pub runtime: Option<crate::runtime::Runtime>,
    /// The DBOS source, when `FLOWGATE_DBOS_URL` is set.
    pub dbos: Option<crate::dbos::Dbos>,
    /// The standbys reads go to, when `FLOWGATE_READ_URL` is set.
    pub replicas: Option<crate::replica::Replicas>,
}

/// Only `/healthz`, `/readyz` and `/metrics`, for the optional admin listener (private by
/// deployment, so its callers may read everything it serves).
pub fn admin_router(state: AppState) -> Router {
    health::router()
        .layer(axum::Extension(crate::http::access::Caller::local("admin")))
        .with_state(state)
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body;
    let router = Router::new()
        .merge(streams::router())
        .merge(events::router())
        .merge(messages::router())
        .merge(runs::router())
        .merge(finish::router())
        .merge(workflows::router())
        .merge(tokens::router())
        .merge(share::router())
        .merge(health::router())
        .merge(page::router())
        .merge(crate::http::approvals::router())
        .merge(live::router())
        .merge(crate::http::durable_streams::router())
        .merge(dbos::router())
        .merge(openapi::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed here",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::access::guard::guard,
        ));
    let router = match cors::cors(&state.config) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(panics::layer(state.metrics.http_panics.clone()))
        .layer(trace_layer())
        .with_state(state)
}

type TraceLayer = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&axum::http::Request<axum::body::Body>) -> tracing::Span,
>;

/// Request spans name the method and path only: query strings may carry tokens, and an
/// approval link's token in its path is replaced. They are debug-level: an enabled span
/// lives (with its formatted fields) as long as its response, which for an SSE reader is
/// the whole connection.
fn trace_layer() -> TraceLayer {
    tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
        tracing::debug_span!("request", method = %req.method(), path = %crate::auth::redact_path(req.uri().path()))
    })
}
