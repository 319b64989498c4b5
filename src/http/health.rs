//! Liveness, readiness and metrics. Liveness never touches the database; all three stay
//! fast because CPU-heavy work runs off the async executor. The workflow counts in
//! `/metrics` are read through [`crate::store::probe`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::errors::Auth;
use super::AppState;

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Resident memory in MiB.
    pub memory_mb: f64,
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// The database answers, the listener is connected and the server is not draining.
    pub ready: bool,
    /// The database answers.
    pub database: bool,
    /// The LISTEN connection is up.
    pub listener: bool,
    /// Shutdown has begun.
    pub draining: bool,
    /// With standbys configured: true while one is set aside (the primary serves its reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<bool>,
    /// With standbys configured: each one's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standbys: Option<Vec<StandbyReport>>,
}

/// One standby's state in `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandbyReport {
    /// Its label.
    pub standby: String,
    /// Its health at the last probe.
    #[schema(value_type = String)]
    pub state: crate::replica::Health,
    /// Replay lag in bytes at the last probe.
    pub lag_bytes: i64,
    /// Replay lag in seconds at the last probe.
    pub lag_seconds: f64,
}

/// Resident memory of this process in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// Resident memory of process `pid` (a number, or `self`) in bytes (Linux; 0 elsewhere).
pub fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", summary = "Liveness",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz(State(app): State<AppState>) -> Response {
    let rss = rss_bytes();
    Json(Health {
        status: "ok",
        uptime_s: app.started.elapsed().as_secs(),
        memory_mb: (rss as f64 / 1048576.0 * 10.0).round() / 10.0,
    })
    .into_response()
}

/// Readiness.
#[utoipa::path(get, path = "/readyz", summary = "Readiness", responses(
    (status = 200, description = "Ready", body = Ready),
    (status = 503, description = "Not ready", body = Ready)))]
async fn readyz(State(app): State<AppState>) -> Response {
    let db = tokio::time::timeout(Duration::from_secs(2), app.store.ping())
        .await
        .unwrap_or(false);
    let listener = app.listener.connected.load(Ordering::SeqCst);
    let draining = app.draining.is_cancelled();
    let ready = db && listener && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = Ready {
        ready,
        database: db,
        listener,
        draining,
        degraded: None,
        standbys: None,
    };
    if let Some(r) = &app.replicas {
        // Still ready when a standby is set aside: the primary serves its reads.
        body.degraded = Some(r.degraded());
        let standbys = r.standbys().iter().map(|s| {
            let st = s.state();
            StandbyReport {
                standby: s.label.clone(),
                state: st.state,
                lag_bytes: st.lag_bytes,
                lag_seconds: st.lag_seconds,
            }
        });
        body.standbys = Some(standbys.collect());
    }
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics", responses(
    (status = 200, description = "Metrics", content_type = "text/plain", body = String), Auth))]
async fn metrics(State(app): State<AppState>, _admin: crate::http::access::AdminKey) -> Response {
    let m = &app.metrics;
    m.listener_connected
        .set(app.listener.connected.load(Ordering::SeqCst) as i64);
    m.listener_reconnects
        .set(app.listener.reconnects.load(Ordering::SeqCst) as i64);
    m.pool_size.set(app.store.pool.size() as i64);
    m.pool_idle.set(app.store.pool.num_idle() as i64);
    let (streams, runs) = app.hub.topic_counts();
    m.hub_topics.set((streams + runs) as i64);
    let mut text = m.render();
    // Workflow counts come from the database at scrape time (not from a loop of ours).
    let counts = app.store.status_counts().await;
    let depth = app.store.queue_depths().await;
    if let Ok(depth) = depth {
        text.push_str("# HELP flowgate_queue_depth Workflows waiting in each queue\n# TYPE flowgate_queue_depth gauge\n");
        for (queue, n) in depth {
            text.push_str(&format!("flowgate_queue_depth{{queue=\"{queue}\"}} {n}\n"));
        }
    }
    if let Ok(counts) = counts {
        text.push_str(
            "# HELP flowgate_workflows Workflows by status\n# TYPE flowgate_workflows gauge\n",
        );
        for (status, n) in counts {
            text.push_str(&format!("flowgate_workflows{{status=\"{status}\"}} {n}\n"));
        }
    }
    text.push_str(&crate::lifecycle::tables::table_metrics(&app.store).await);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}
