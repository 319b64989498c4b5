//! The HTTP surface (axum): each module owns its routes; this one merges them and holds the
//! shared state.

pub mod access;
pub mod approvals;
pub mod bodies;
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
pub mod reader;
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
        .split_for_parts()
        .0
        .layer(axum::Extension(crate::http::access::Caller::local("admin")))
        .with_state(state)
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body;
    let (router, _) = openapi::api().split_for_parts();
    let router = router
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
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.http_panics.clone(),
            panics::catch,
        ))
        .layer(axum::middleware::from_fn(trace))
        .with_state(state)
}

/// Request spans name the method and path only: query strings may carry tokens, and an
/// approval link's token in its path is replaced. The span covers the handler, not the
/// response body: an SSE body lives as long as its connection, and wrapping it would cost a
/// clock read and a span entry per frame. Server errors are logged with their latency.
async fn trace(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let span = tracing::debug_span!("request", method = %req.method(), path = %crate::auth::redact_path(req.uri().path()));
    let started = std::time::Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(%status, latency_ms, "response failed");
        } else {
            tracing::debug!(%status, latency_ms, "response");
        }
    });
    resp
}
