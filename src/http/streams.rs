//! Stream endpoints: SSE follow, long-poll, and the producer's append and close.

use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{self, AdminWrite, ApiQuery, Names};
use super::reader::RunReader;
use super::sse::GaugeGuard;
use super::values::{check_readable, raw};
use super::{sse, AppState};
use crate::error::ApiError;
use crate::http::access::{AdminKey, Read, RunAccess};
use crate::hub::{Hub, StreamItem};
use crate::ids::{Key, RunId};
use crate::note::{Note, NoteKind};

/// Routes under `/v1/workflows/{id}/streams`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(follow, append))
        .routes(routes!(poll))
        .routes(routes!(close))
}

/// `?from=&timeout=`
#[derive(Debug, Deserialize)]
pub struct ReadQuery {
    from: Option<String>,
    timeout: Option<String>,
}

/// Checks the run exists and `from` is within the stream; returns the stream's length. A read that resumes (`from` > 0)
/// a run that no longer exists answers 410: it was removed by retention.
async fn check_start(
    hub: &Hub,
    run: &str,
    key: &str,
    from: i64,
    field: &str,
) -> Result<i64, ApiError> {
    match hub.source().require_run(run).await {
        Err(crate::error::StoreError::RunNotFound) if from > 0 => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "run_gone",
                "this run no longer exists (removed after its retention)",
            )
            .with_field("id"));
        }
        r => r?,
    }
    // A standby behind the client's position is waited for (or the primary answers).
    let want = crate::replica::Want::AtLeast(from);
    let at = crate::store::PageAt::tail(run, key);
    let tail = hub.source().read_page(at, want).await?;
    if from > tail.next {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "offset_out_of_range",
            format!("{field} is {from} but the stream has {} records", tail.next),
        )
        .with_field(field));
    }
    Ok(tail.next)
}

/// `GET …/streams/{key}`: SSE, `id: <offset>`, `data: <json>`, then `event: end`.
#[utoipa::path(get, path = "/v1/workflows/{id}/streams/{key}",
    summary = "Follow a stream (SSE: records, then `end`; `end` with `expired: true` if the run is removed by retention meanwhile)",
    params(("id" = Name, Path, description = "Run id"), ("key" = Name, Path, description = "Event or stream key"), ("from" = Option<Offset>, Query, description = "First offset to read"), ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "Records as `id: offset`, `data: value`", content_type = "text/event-stream", body = String),
        E400_404_410Auth))]
async fn follow(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    Names((run, key)): Names<(RunId, Key)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    follow_on(
        RunReader::native(&app, &access, &run)?,
        key.as_str(),
        &headers,
        &q,
    )
    .await
}

/// SSE of stream `key` of the run `r` reads, from `Last-Event-ID` + 1, `?from=` or 0.
pub(crate) async fn follow_on(
    r: RunReader<'_>,
    key: &str,
    headers: &HeaderMap,
    q: &ReadQuery,
) -> Result<Response, ApiError> {
    let (from, field) = match extract::last_event_id(headers)? {
        Some(last) => (last + 1, "Last-Event-ID"),
        None => (
            extract::offset("from", q.from.as_deref())?.unwrap_or(0),
            "from",
        ),
    };
    let sub = r.hub.subscribe_stream(r.run, key);
    check_start(r.hub, r.run, key, from, field).await?;
    let delivered = r.app.metrics.records_delivered.clone();
    let frames = sub.follow(from).map(move |item| match item {
        StreamItem::Record(o, p) => {
            delivered.inc();
            sse::event(Some(&o.to_string()), None, &p)
        }
        StreamItem::End(next) => sse::event(None, Some("end"), &End::at(next, None)),
        // The run was removed by retention while being read.
        StreamItem::Gone(next) => sse::event(None, Some("end"), &End::at(next, Some(true))),
    });
    sse::response(r.app, r.permit, frames)
}

/// `GET …/streams/{key}/poll`: records from `from` at once, or the first to commit, or none
/// at the timeout.
#[utoipa::path(get, path = "/v1/workflows/{id}/streams/{key}/poll",
    summary = "Records from ?from, waiting up to ?timeout for the first",
    params(("id" = Name, Path, description = "Run id"), ("key" = Name, Path, description = "Event or stream key"), ("from" = Option<Offset>, Query, description = "First offset to read"), ("timeout" = Option<Seconds>, Query, description = "Seconds to wait (capped by FLOWGATE_MAX_WAIT)")),
    responses((status = 200, description = "Records", body = Records), E400_404_410Auth))]
async fn poll(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    Names((run, key)): Names<(RunId, Key)>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    poll_on(RunReader::native(&app, &access, &run)?, key.as_str(), &q).await
}

/// Long-poll of stream `key` of the run `r` reads.
pub(crate) async fn poll_on(
    r: RunReader<'_>,
    key: &str,
    q: &ReadQuery,
) -> Result<Response, ApiError> {
    let from = extract::offset("from", q.from.as_deref())?.unwrap_or(0);
    let wait = r.wait(q.timeout.as_deref())?;
    let sub = r.hub.subscribe_stream(r.run, key);
    let length = check_start(r.hub, r.run, key, from, "from").await?;
    let items = sub.follow(from);
    futures::pin_mut!(items);
    let _waiting = GaugeGuard::inc(&r.app.metrics.long_polls_waiting);
    // Records that exist are answered at once, whatever the timeout (even 0); the timeout
    // bounds only the wait for new ones.
    let wait = if length > from {
        std::time::Duration::from_secs(3600)
    } else {
        wait
    };
    let mut records = Vec::new();
    let mut next = from;
    let mut closed = false;
    let mut expired = false;
    let first = tokio::select! {
        i = items.next() => i,
        _ = tokio::time::sleep(wait) => None,
        _ = r.app.shutdown.cancelled() => None,
    };
    let mut item = first;
    while let Some(i) = item {
        match i {
            StreamItem::Record(o, p) => {
                records.push(PolledRecord {
                    offset: o,
                    value: raw(&p),
                });
                next = o + 1;
            }
            StreamItem::End(n) => {
                closed = true;
                next = n;
                break;
            }
            StreamItem::Gone(n) => {
                expired = true;
                closed = true;
                next = n;
                break;
            }
        }
        if records.len() >= r.app.config.max_batch {
            break;
        }
        item = items.next().now_or_never().flatten();
    }
    Ok(Json(Polled {
        records,
        next,
        closed,
        expired,
    })
    .into_response())
}

/// One record in a long-poll answer; the value is the stored JSON, byte for byte.
#[derive(Serialize)]
struct PolledRecord {
    offset: i64,
    value: Box<RawValue>,
}

/// A long-poll answer.
#[derive(Serialize)]
struct Polled {
    records: Vec<PolledRecord>,
    next: i64,
    closed: bool,
    /// Present (true) only when the run was removed by retention while polled.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    expired: bool,
}

/// `POST …/streams/{key}`: a JSON array appended in order; each element stored byte-exact.
#[utoipa::path(post, path = "/v1/workflows/{id}/streams/{key}", summary = "Append a JSON array of records",
    params(("id" = Name, Path, description = "Run id"), ("key" = Name, Path, description = "Event or stream key")), request_body = RecordBatch,
    responses((status = 200, description = "Appended", body = Appended), E400_404_409_413_415Auth))]
async fn append(
    State(app): State<AppState>,
    AdminWrite((run, key), values): AdminWrite<(RunId, Key), Vec<Box<RawValue>>>,
) -> Result<Response, ApiError> {
    if values.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "must be a non-empty JSON array of records",
        ));
    }
    if values.len() > app.config.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("at most {} records per append", app.config.max_batch),
        )
        .with_field("body"));
    }
    if let Some(i) = values
        .iter()
        .position(|v| v.get().len() > app.config.max_value)
    {
        return Err(ApiError::value_too_large(
            format!("body[{i}]"),
            &format!("record {i}"),
            app.config.max_value,
        ));
    }
    for (i, v) in values.iter().enumerate() {
        check_readable(&format!("body[{i}]"), v)?;
    }
    let payloads: Vec<Vec<u8>> = values.iter().map(|v| v.get().as_bytes().to_vec()).collect();
    let n = payloads.len();
    // Shares a transaction with concurrent writes; the wake-up commits with the records.
    let first = app.notifier.group().append(&run, &key, payloads).await?;
    let next = first + n as i64;
    app.metrics.records_appended.inc_by(n as u64);
    Ok(Json(Appended {
        first_offset: first,
        next,
    })
    .into_response())
}

/// Appended records.
#[derive(Debug, Serialize, ToSchema)]
pub struct Appended {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// The stream's next offset after them.
    pub next: i64,
}

/// A closed stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct Closed {
    /// Its final next offset.
    pub next: i64,
    /// Always true.
    pub closed: bool,
}

/// The `end` frame of a stream's SSE: where it ended, and whether the run was removed.
#[derive(Serialize)]
struct End {
    next: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<bool>,
}

impl End {
    /// The frame's JSON.
    fn at(next: i64, expired: Option<bool>) -> Vec<u8> {
        serde_json::to_vec(&End { next, expired }).unwrap_or_default()
    }
}

/// `POST …/streams/{key}/close`: sets the close marker (idempotent).
#[utoipa::path(post, path = "/v1/workflows/{id}/streams/{key}/close", summary = "Close a stream (idempotent)",
    params(("id" = Name, Path, description = "Run id"), ("key" = Name, Path, description = "Event or stream key")), responses((status = 200, description = "Closed", body = Closed), E400_404Auth))]
async fn close(
    State(app): State<AppState>,
    _admin: AdminKey,
    Names((run, key)): Names<(RunId, Key)>,
) -> Result<Response, ApiError> {
    let next = app.store.close_stream(&run, &key).await?;
    app.notifier.publish(Note::new(
        NoteKind::Stream,
        run.as_str(),
        key.as_str(),
        next | crate::replica::CLOSED_FLAG,
    ));
    Ok(Json(Closed { next, closed: true }).into_response())
}
