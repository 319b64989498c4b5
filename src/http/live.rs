//! `GET /v1/workflows/{id}/live`: one SSE connection per run for pages, multiplexing the
//! run's status (`event: status`), event changes (`event: event`), the records of every
//! stream of the run (`event: record`, including streams created later), stream closes
//! (`event: close`) and the workflow's recorded steps as they happen (`event: step`, the
//! run's timeline).
//!
//! Every frame carries the client's whole position as an opaque [`Cursor`] `id:`, so a
//! reconnect with `Last-Event-ID` (or `?cursor=`) resumes without duplicates or gaps. All
//! reading goes through hub subscriptions (the run topic and one stream topic per stream),
//! so a note costs one database read per process, not per connection. The response stays
//! open until the client leaves or the server shuts down: a finished run may still change.

pub mod cursor;

use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use std::collections::HashSet;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, SelectAll};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::ApiQuery;
use super::values::{raw, to_json, EventView, RecordView};
use super::{sse, AppState};
use crate::error::ApiError;
use crate::http::access::{Read, RunAccess};
use crate::http::reader::RunReader;
use crate::hub::{Hub, RunUpdate, Source, StreamItem};
use crate::store::{EventRow, RunRow, StepRow, StreamInfo};
pub use cursor::{Cursor, MAX_LIVE_STREAMS};

/// Route for `/v1/workflows/{id}/live`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live))
}

/// `?cursor=`: a resume position for clients that cannot set `Last-Event-ID`.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    cursor: Option<String>,
}

/// The `status` frame's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct StatusView {
    id: String,
    workflow: String,
    status: String,
    output: Option<Value>,
    error: Option<Value>,
    outcome: Option<String>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    parent_id: Option<String>,
}

impl From<&RunRow> for StatusView {
    fn from(r: &RunRow) -> Self {
        StatusView {
            id: r.id.clone(),
            workflow: r.workflow.clone(),
            status: r.status.to_string(),
            output: r.output.clone(),
            error: r.error.clone(),
            outcome: r.outcome.clone(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            parent_id: r.parent_id.clone(),
        }
    }
}

/// The `step` frame's data: one step of the timeline.
#[derive(Debug, Serialize)]
struct StepView<'a> {
    step: i32,
    name: &'a str,
    started_at: Option<DateTime<Utc>>,
    finished_at: DateTime<Utc>,
    duration_ms: Option<i64>,
    error: Option<&'a Value>,
}

/// The resume position from the header (preferred: it is what a browser sends on its own
/// reconnect) or the query.
fn start_cursor(headers: &HeaderMap, q: &LiveQuery) -> Result<(Cursor, &'static str), ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let text = v
            .to_str()
            .map_err(|_| ApiError::invalid("Last-Event-ID", "must be ASCII"))?;
        if !text.trim().is_empty() {
            return Ok((Cursor::parse("Last-Event-ID", text)?, "Last-Event-ID"));
        }
    }
    match q.cursor.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(c) => Ok((Cursor::parse("cursor", c)?, "cursor")),
        None => Ok((Cursor::default(), "cursor")),
    }
}

/// `GET …/live`: the run's status, events and streams on one SSE connection.
#[utoipa::path(get, path = "/v1/workflows/{id}/live",
    summary = "Status, events and every stream of a run on one SSE connection",
    params(("id" = Name, Path, description = "Run id"), ("cursor" = Option<String>, Query, description = "Resume position (the last SSE id)"), ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "`status`, `event`, `record`, `close`, `step` and `limit` frames",
        content_type = "text/event-stream", body = String), E400_404Auth))]
async fn live(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    live_on(RunReader::native(&app, &access, &access.run)?, &headers, &q).await
}

/// The live SSE of the run `r` reads.
pub(crate) async fn live_on(
    r: RunReader<'_>,
    headers: &HeaderMap,
    q: &LiveQuery,
) -> Result<Response, ApiError> {
    let (cursor, field) = start_cursor(headers, q)?;
    let source = r.hub.source().clone();
    // Subscribe before reading, so nothing committed after the reads below is missed.
    let updates = r.hub.subscribe_run(r.run);
    let events = r.hub.subscribe_run(r.run);
    let steps = r.hub.subscribe_run(r.run);
    let row = source
        .get_run(r.run)
        .await?
        .ok_or_else(ApiError::run_not_found)?;
    let (_, clock) = source.events_after(r.run, i64::MAX).await?;
    let streams = source
        .list_streams(r.run, MAX_LIVE_STREAMS as i64 + 1)
        .await?;
    cursor.check_against(field, clock.unwrap_or(0), &streams)?;

    let mut live = Live {
        run: r.run.to_string(),
        hub: r.hub.clone(),
        source,
        cursor,
        status: None,
        known: HashSet::new(),
        skipped: HashSet::new(),
        streams: SelectAll::new(),
        gone: false,
    };
    let frames = async_stream::stream! {
        let mut updates = updates;
        yield Bytes::from_static(b"retry: 1000\n\n");
        if let Some(f) = live.first_status(&row) {
            yield f;
        }
        for f in live.add_streams(&streams) {
            yield f;
        }
        let events = events.follow_events(live.cursor.v);
        futures::pin_mut!(events);
        let steps = steps.follow_steps(live.cursor.p - 1);
        futures::pin_mut!(steps);
        loop {
            tokio::select! {
                u = updates.recv() => {
                    for f in live.on_update(u).await {
                        yield f;
                    }
                }
                Some(ev) = events.next() => yield live.on_event(ev),
                Some(step) = steps.next() => yield live.on_step(&step),
                Some((key, item)) = live.streams.next(), if !live.streams.is_empty() => {
                    yield live.on_stream(&key, item);
                }
            }
            if live.gone {
                break;
            }
        }
    };
    sse::response(r.app, r.permit, frames)
}

/// One connection's state: the position it has delivered and the streams it follows.
struct Live {
    run: String,
    hub: Hub,
    source: Source,
    cursor: Cursor,
    /// Last status delivered (or known to the client at resume).
    status: Option<StatusView>,
    /// Streams followed or already ended.
    known: HashSet<String>,
    /// Streams left out by the limit.
    skipped: HashSet<String>,
    /// The followed streams, merged.
    streams: SelectAll<BoxStream<'static, (Arc<str>, StreamItem)>>,
    /// The run was removed (retention): the response ends after an `end` frame.
    gone: bool,
}

impl Live {
    fn frame(&self, name: &str, data: &impl Serialize) -> Bytes {
        sse::event(Some(&self.cursor.encode()), Some(name), &to_json(data))
    }

    /// The status at connect: sent unless the client already has it.
    fn first_status(&mut self, row: &RunRow) -> Option<Bytes> {
        let view = StatusView::from(row);
        if self.cursor.st.as_deref() == Some(view.status.as_str()) {
            self.status = Some(view);
            return None;
        }
        Some(self.status_frame(view))
    }

    /// A status row from the hub or a re-read: sent if it differs from the last one.
    fn on_status(&mut self, row: &RunRow) -> Option<Bytes> {
        let view = StatusView::from(row);
        (self.status.as_ref() != Some(&view)).then(|| self.status_frame(view))
    }

    fn status_frame(&mut self, view: StatusView) -> Bytes {
        self.cursor.st = Some(view.status.clone());
        let frame = self.frame("status", &json!(view));
        self.status = Some(view);
        frame
    }

    /// Starts following each stream not yet known.
    fn add_streams(&mut self, streams: &[StreamInfo]) -> Vec<Bytes> {
        streams.iter().filter_map(|s| self.follow(&s.key)).collect()
    }

    /// Follows stream `key` from the cursor, unless known already or over the limit (then
    /// the first time a stream is left out, returns a `limit` frame saying so).
    fn follow(&mut self, key: &str) -> Option<Bytes> {
        if self.known.contains(key) || self.skipped.contains(key) {
            return None;
        }
        if self.known.len() >= MAX_LIVE_STREAMS {
            self.skipped.insert(key.to_string());
            if self.skipped.len() > 1 {
                return None;
            }
            let message = format!(
                "this run has more than {MAX_LIVE_STREAMS} streams; only the first \
                 {MAX_LIVE_STREAMS} are followed live"
            );
            let data = json!({ "max_streams": MAX_LIVE_STREAMS, "message": message });
            return Some(self.frame("limit", &data));
        }
        self.known.insert(key.to_string());
        if !self.cursor.e.contains(key) {
            let tag: Arc<str> = key.into();
            let items = self
                .hub
                .subscribe_stream(&self.run, key)
                .follow(self.cursor.next(key))
                .map(move |item| (tag.clone(), item));
            self.streams.push(items.boxed());
        }
        None
    }

    async fn on_update(&mut self, update: Option<RunUpdate>) -> Vec<Bytes> {
        match update {
            Some(RunUpdate::Status(row)) => self.on_status(&row).into_iter().collect(),
            // A stream of this run was touched: no read needed to start following it.
            Some(RunUpdate::Stream(key)) => self.follow(&key).into_iter().collect(),
            // An empty topic is the hub's resync signal; `None` means we lagged.
            Some(RunUpdate::Message(t)) if t.is_empty() => self.rescan().await,
            None => self.rescan().await,
            Some(_) => Vec::new(),
        }
    }

    /// After a resync or lag: re-reads the status and the stream list.
    async fn rescan(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        match self.source.get_run(&self.run).await {
            Ok(Some(row)) => out.extend(self.on_status(&row)),
            Ok(None) => {
                self.gone = true;
                out.push(sse::event(None, Some("end"), br#"{"expired":true}"#));
                return out;
            }
            Err(e) => tracing::warn!(error = %e, run = %self.run, "live status re-read failed"),
        }
        match self
            .source
            .list_streams(&self.run, MAX_LIVE_STREAMS as i64 + 1)
            .await
        {
            Ok(streams) => out.extend(self.add_streams(&streams)),
            Err(e) => tracing::warn!(error = %e, run = %self.run, "live stream list failed"),
        }
        out
    }

    fn on_event(&mut self, ev: EventRow) -> Bytes {
        self.cursor.v = self.cursor.v.max(ev.version);
        self.frame(
            "event",
            &EventView {
                key: Some(&ev.key),
                value: &ev.value,
                version: ev.version,
            },
        )
    }

    fn on_step(&mut self, s: &StepRow) -> Bytes {
        self.cursor.p = self.cursor.p.max(s.step + 1);
        let view = StepView {
            step: s.step,
            name: &s.name,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: s
                .started_at
                .map(|t| (s.finished_at - t).num_milliseconds().max(0)),
            error: s.error.as_ref(),
        };
        self.frame("step", &view)
    }

    fn on_stream(&mut self, key: &str, item: StreamItem) -> Bytes {
        match item {
            StreamItem::Record(offset, payload) => {
                self.cursor.s.insert(key.to_string(), offset + 1);
                let value = raw(&payload);
                let data = RecordView {
                    key,
                    offset,
                    value: &value,
                };
                self.frame("record", &data)
            }
            StreamItem::End(next) => {
                if next > 0 {
                    self.cursor.s.insert(key.to_string(), next);
                }
                self.cursor.e.insert(key.to_string());
                self.frame("close", &json!({ "key": key, "next": next }))
            }
            StreamItem::Gone(_) => {
                self.gone = true;
                sse::event(None, Some("end"), br#"{"expired":true}"#)
            }
        }
    }
}
