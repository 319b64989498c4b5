//! The Durable Streams protocol at `/v1/stream/{path}`: append-only byte or JSON streams
//! addressed by URL, with opaque sortable offsets, catch-up reads, long-poll and SSE, forks,
//! TTLs and idempotent producers.
//!
//! Streams live in their own tables (`migrations/0003_durable_streams.sql`) and use the same
//! write and push path as workflow streams: appends go through the process's group commit
//! ([`crate::notify::group`], [`crate::store::durable_streams::batch`]), so concurrent
//! appends share a transaction and a commit, and announce themselves in it; live readers
//! follow the hub's stream topic keyed (`~ds`, stream id), which receives this process's
//! committed rows without reading them back (one database read per note from another
//! process serves every reader here).
//!
//! Workflow streams are readable through the protocol, read-only and in JSON mode, at
//! `/v1/stream/workflows/{run}/{key}`; the position after record `n` is offset `n + 1`.
//!
//! Modules: [`offsets`] (offset, cursor and header grammars) → [`create`] (PUT, forks) and
//! [`write`] (POST, [`producer`]s) →
//! [`http`] (PUT, POST, HEAD, DELETE, OPTIONS), [`read`] (GET catch-up), [`poll`] (long-poll)
//! and [`live`] (SSE). The reserved `__ds/` subscription API: [`subs`] (routes, registration), [`wake`] (activity
//! opens wakes), [`lease`] (callbacks, claims, fencing), [`webhook`] (signing, URL policy).
//! Who may call what: [`access`]. The documented routes, each handing over to
//! [`http::dispatch`]: [`routes`]. The tables and their SQL: [`crate::store::durable_streams`];
//! this module runs the expiry sweep over them.

pub mod access;
pub mod create;
pub mod http;
pub mod lease;
pub mod live;
pub mod offsets;
pub mod poll;
pub mod producer;
pub mod read;
pub mod routes;
pub mod subs;
pub mod wake;
pub mod webhook;
pub mod write;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::AppState;

/// Hub namespace of durable streams (not a valid run id, so it never collides).
pub use crate::note::{durable_key as hub_key, DURABLE_NAMESPACE as HUB_NAMESPACE};

/// Content type of a stream created without one.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Largest request body accepted by PUT and POST (larger: 413).
pub const MAX_BODY: usize = 16 << 20;

/// Most JSON messages in one PUT or POST body.
pub const MAX_MESSAGES: usize = 100_000;

/// Longest `Content-Type`, `Stream-Seq` or fork source value.
pub const MAX_HEADER: usize = 1024;

/// Longest stream path.
pub const MAX_PATH: usize = 1024;

/// Path prefix under which workflow streams are mapped.
pub const WORKFLOW_PREFIX: &str = "workflows/";

/// How often expired streams are swept (reads check expiry lazily in between).
pub const SWEEP_PERIOD: Duration = Duration::from_secs(60);

/// SSE connections are closed after this long; clients reconnect from their last offset.
pub const SSE_MAX_AGE: Duration = Duration::from_secs(60);

/// Protocol request headers a browser producer or reader sends (lower case).
pub const REQUEST_HEADERS: &[&str] = &[
    "stream-seq",
    "stream-ttl",
    "stream-expires-at",
    "stream-closed",
    "producer-id",
    "producer-epoch",
    "producer-seq",
    "stream-forked-from",
    "stream-fork-offset",
    "stream-fork-sub-offset",
];

/// Protocol response headers a browser must be able to read (lower case).
pub const RESPONSE_HEADERS: &[&str] = &[
    "stream-next-offset",
    "stream-cursor",
    "stream-up-to-date",
    "stream-closed",
    "stream-ttl",
    "stream-expires-at",
    "stream-sse-data-encoding",
    "producer-epoch",
    "producer-seq",
    "producer-expected-seq",
    "producer-received-seq",
];

/// Request headers a browser may send.
const ALLOW_HEADERS: &str = "Content-Type, If-None-Match, Stream-Seq, Stream-TTL, \
     Stream-Expires-At, Stream-Closed, Producer-Id, Producer-Epoch, Producer-Seq, \
     Stream-Forked-From, Stream-Fork-Offset, Stream-Fork-Sub-Offset, Authorization";

/// Response headers a browser may read.
const EXPOSE_HEADERS: &str = "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, \
     Stream-Closed, Stream-TTL, Stream-Expires-At, Stream-SSE-Data-Encoding, Producer-Epoch, \
     Producer-Seq, Producer-Expected-Seq, Producer-Received-Seq, ETag, Location, Content-Type";

/// Headers of every protocol response.
const BROWSER_SAFETY: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("cross-origin-resource-policy", "cross-origin"),
];

/// Headers of every protocol response when `*` is a CORS origin.
const OPEN_CORS: &[(&str, &str)] = &[
    ("access-control-allow-origin", "*"),
    ("access-control-expose-headers", EXPOSE_HEADERS),
];

/// Headers of the preflight answer.
const PREFLIGHT: &[(&str, &str)] = &[
    (
        "access-control-allow-methods",
        "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    ),
    ("access-control-allow-headers", ALLOW_HEADERS),
    ("access-control-max-age", "86400"),
];

/// Routes under `/v1/stream/`.
pub use routes::router;

/// Headers on every protocol response: browser safety always; open CORS (any origin, no
/// credentials) only when `*` is configured as a CORS origin (then the server's CORS layer
/// answers preflights; this adds the exposed protocol headers). With no CORS origins, no
/// other site may read a stream.
pub fn common_headers(app: &AppState, resp: &mut Response) {
    let h = resp.headers_mut();
    insert_all(h, BROWSER_SAFETY);
    if app.config.cors_origins.iter().any(|o| o == "*") {
        insert_all(h, OPEN_CORS);
    }
}

/// `OPTIONS`: the CORS preflight answer (when the server's own CORS policy did not answer).
pub fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    insert_all(r.headers_mut(), PREFLIGHT);
    r
}

/// Sets each `(name, value)` header.
fn insert_all(h: &mut HeaderMap, headers: &[(&'static str, &'static str)]) {
    for &(name, value) in headers {
        h.insert(name, HeaderValue::from_static(value));
    }
}

/// Lower-cased media type without parameters.
pub fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// True for content types sent as text in SSE (`text/*`, `application/json`).
pub fn is_text(ct: &str) -> bool {
    let m = media_type(ct);
    m.starts_with("text/") || m == "application/json"
}

/// A request header as text (`None` if absent or not visible ASCII).
pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Stream-Closed` counts only when it is `true` (any case).
pub(crate) fn closed_flag(h: &HeaderMap) -> bool {
    header(h, "stream-closed").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Long-poll timeout (and SSE keep-alive period).
pub fn long_poll(app: &AppState) -> Duration {
    Duration::from_secs_f64(app.config.ds_long_poll.clamp(0.05, 300.0))
}

/// A protocol error: JSON body, status and optional headers.
pub(crate) fn fail(status: StatusCode, code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(status, code, msg)
}

/// Spawns the background expiry sweep.
pub fn spawn_sweep(
    tracker: &tokio_util::task::TaskTracker,
    pool: sqlx::PgPool,
    cancel: tokio_util::sync::CancellationToken,
) {
    tracker.spawn(sweep(pool, SWEEP_PERIOD, cancel));
}

/// Sweeps expired streams every `period` until `cancel` fires.
async fn sweep(pool: sqlx::PgPool, period: Duration, cancel: tokio_util::sync::CancellationToken) {
    let store = crate::store::Store { pool };
    let mut every = crate::every::Every::now(period, cancel);
    while every.tick().await {
        match store.ds_sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(streams = n, "expired durable streams dropped"),
            Err(e) => tracing::warn!(error = %e, "durable stream sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(media_type("Text/Plain; charset=UTF-8"), "text/plain");
        assert_eq!(media_type(" application/JSON "), "application/json");
        assert!(is_text("text/csv"));
        assert!(is_text("application/json; charset=utf-8"));
        assert!(!is_text("application/octet-stream"));
        assert!(!is_text("application/ndjson"));
    }
}
