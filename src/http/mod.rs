//! The HTTP surface (axum): each module owns its routes; this one merges them and holds the
//! shared state.

pub mod events;
pub mod extract;
pub mod health;
pub mod messages;
pub mod page;
pub mod runs;
pub mod sse;
pub mod streams;
pub mod workflows;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
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
    /// Process start.
    pub started: Instant,
    /// The workflow runtime, when this process runs workflows.
    pub runtime: Option<crate::runtime::Runtime>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body;
    Router::new()
        .merge(streams::router())
        .merge(events::router())
        .merge(messages::router())
        .merge(runs::router())
        .merge(workflows::router())
        .merge(health::router())
        .merge(page::router())
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
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
