//! Liveness and readiness. Both answer without touching the executor-heavy paths.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

/// `/healthz` and `/readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Resident memory of this process in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

async fn healthz(State(app): State<AppState>) -> Response {
    let rss = rss_bytes();
    Json(json!({
        "status": "ok",
        "uptime_s": app.started.elapsed().as_secs(),
        "memory_mb": (rss as f64 / 1048576.0 * 10.0).round() / 10.0,
    }))
    .into_response()
}

async fn readyz(State(app): State<AppState>) -> Response {
    let db = tokio::time::timeout(Duration::from_secs(2), app.store.ping())
        .await
        .unwrap_or(false);
    let listener = app.listener.connected.load(Ordering::SeqCst);
    let draining = app.shutdown.is_cancelled();
    let ready = db && listener && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "database": db, "listener": listener, "draining": draining })),
    )
        .into_response()
}
