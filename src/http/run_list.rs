//! The live run list: `GET /v1/workflows` with `Accept: text/event-stream`.
//!
//! Without a position it sends the matching runs once (`event: runs`, newest first, up to
//! `limit`), then `event: run` for every matching run that starts, changes status or
//! finishes. Every `id:` is a feed position; a reconnect with `Last-Event-ID` (or
//! `?since=`) continues after it with nothing lost or repeated. Changes come from the hub's
//! run feed, so an open list costs no database read per change; with `FLOWGATE_READ_URL`
//! the first read and the feed's reads go to a standby.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use super::{sse, AppState};
use crate::error::ApiError;
use crate::http::access::StreamPermit;
use crate::hub::FeedItem;
use crate::store::run_changes::Snapshot;
use crate::store::runs::ListQuery;

/// Opens the live list for `filter`, resuming after `Last-Event-ID` or `since` if given.
pub fn live(
    app: &AppState,
    permit: StreamPermit,
    headers: &HeaderMap,
    since: Option<&str>,
    filter: ListQuery,
) -> Result<Response, ApiError> {
    let resume = match headers.get("last-event-id") {
        Some(v) => Some((v.to_str().unwrap_or(""), "Last-Event-ID")),
        None => since.map(|s| (s, "since")),
    };
    let resume = match resume {
        Some((text, field)) => Some(Snapshot::parse(text.trim()).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_position",
                "not a run list position (use the id of an event this list sent)",
            )
            .with_field(field)
        })?),
        None => None,
    };
    let sub = app.hub.subscribe_runs();
    let hub = app.hub.clone();
    let frames = async_stream::stream! {
        let start = match resume {
            Some(pos) => pos,
            None => {
                let (runs, pos) = crate::hub::retry_read("run list", || hub.runs_now(&filter)).await;
                let body = json!({ "runs": runs }).to_string();
                yield sse::event(Some(&pos.to_string()), Some("runs"), body.as_bytes());
                pos
            }
        };
        let changes = sub.follow(start, filter);
        futures::pin_mut!(changes);
        while let Some(item) = changes.next().await {
            yield frame(&item);
        }
    };
    sse::response(app, permit, frames)
}

fn frame(item: &FeedItem) -> Bytes {
    let data = serde_json::to_vec(&item.run).unwrap_or_default();
    let id = item.position.as_ref().map(|p| p.to_string());
    sse::event(id.as_deref(), Some("run"), &data)
}
