//! GET: catch-up reads (with ETags and `offset=now`), and the dispatch to long-poll
//! ([`super::poll`]) and SSE ([`super::live`]), over either a durable stream or a workflow
//! stream mapped at `workflows/{run}/{key}`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};

use super::http::{gone, missing, set};
use super::offsets::{self, Start};
use super::{header, hub_key, HUB_NAMESPACE, WORKFLOW_PREFIX};
use crate::error::{ApiError, StoreError};
use crate::http::access::Caller;
use crate::http::AppState;
use crate::ids::{Key, RunId};
use crate::replica::{Mode, Want};
use crate::store::durable_streams::{Meta, CHUNK_ROWS};
use crate::store::{PageAt, Store};

/// What a stream URL names.
#[derive(Debug, Clone)]
pub enum Target {
    /// A durable stream.
    Durable(Meta),
    /// A workflow stream (read-only, JSON).
    Workflow {
        /// Run id.
        run: String,
        /// Stream key.
        key: String,
        /// Records so far.
        tail: i64,
        /// Close marker set.
        closed: bool,
    },
}

impl Target {
    /// Next offset at this snapshot.
    pub fn tail(&self) -> i64 {
        match self {
            Target::Durable(m) => m.tail,
            Target::Workflow { tail, .. } => *tail,
        }
    }

    /// Closed at this snapshot.
    pub fn closed(&self) -> bool {
        match self {
            Target::Durable(m) => m.closed,
            Target::Workflow { closed, .. } => *closed,
        }
    }

    /// The content type served.
    pub fn content_type(&self) -> &str {
        match self {
            Target::Durable(m) => &m.content_type,
            Target::Workflow { .. } => "application/json",
        }
    }

    /// JSON mode.
    pub fn is_json(&self) -> bool {
        super::media_type(self.content_type()) == "application/json"
    }

    /// The hub topic (`run`, `key`).
    pub fn topic(&self) -> (String, String) {
        match self {
            Target::Durable(m) => (HUB_NAMESPACE.to_string(), hub_key(m.id)),
            Target::Workflow { run, key, .. } => (run.clone(), key.clone()),
        }
    }

    /// This snapshot moved on to `tail` (and closed, if `closed`), as a follower saw it.
    pub fn at(&self, tail: i64, closed: bool) -> Target {
        let mut t = self.clone();
        match &mut t {
            Target::Durable(m) => {
                m.tail = m.tail.max(tail);
                m.closed |= closed;
            }
            Target::Workflow {
                tail: t, closed: c, ..
            } => {
                *t = (*t).max(tail);
                *c |= closed;
            }
        }
        t
    }

    fn etag_prefix(&self) -> String {
        match self {
            Target::Durable(m) => m.id.to_string(),
            Target::Workflow { run, key, .. } => format!("wf/{run}/{key}"),
        }
    }

    /// One catch-up chunk after offset `after` up to this snapshot's tail: `(row, payload)`.
    /// With standbys, read there (the rows up to the tail exist: a standby is waited for).
    pub async fn read(&self, app: &AppState, after: i64) -> Result<Vec<(i64, Bytes)>, ApiError> {
        if after >= self.tail() {
            return Ok(Vec::new());
        }
        match self {
            Target::Durable(m) => {
                let (id, upto) = (m.id, m.tail);
                let Some(r) = &app.replicas else {
                    return Ok(app.store.ds_read(id, after, upto).await?);
                };
                let read = |s: Store| async move { s.ds_read(id, after, upto).await };
                Ok(r.read(read, |rows| !rows.is_empty(), Mode::Poll).await?)
            }
            Target::Workflow { run, key, tail, .. } => {
                let page = app
                    .hub
                    .source()
                    .read_page(
                        PageAt {
                            run,
                            key,
                            from: after,
                            limit: CHUNK_ROWS,
                        },
                        Want::AtLeast(*tail),
                    )
                    .await?;
                Ok(page
                    .records
                    .into_iter()
                    .map(|(o, p)| (o + 1, p))
                    .filter(|(n, _)| n <= tail)
                    .collect())
            }
        }
    }
}

/// The run a workflow-stream path names (`workflows/{run}/{key}`), as the reader parses it.
pub fn workflow_run(path: &str) -> Option<&str> {
    path.strip_prefix(WORKFLOW_PREFIX)
        .map(|rest| rest.split_once('/').map_or(rest, |(run, _)| run))
}

/// Looks up what `path` names: 404 if nothing (or expired), 410 if deleted. Includes every
/// change committed before the call (a standby is read once it has replayed them).
pub async fn resolve(app: &AppState, path: &str) -> Result<Target, ApiError> {
    resolve_at(app, path, Want::Everything).await
}

/// Like [`resolve`], showing at least `want` (a live read names the offset it holds; it
/// waits for anything newer anyway).
pub async fn resolve_at(app: &AppState, path: &str, want: Want) -> Result<Target, ApiError> {
    if let Some(rest) = path.strip_prefix(WORKFLOW_PREFIX) {
        let (run, key) = rest.split_once('/').ok_or_else(missing)?;
        let run = RunId::parse(run).map_err(|_| missing())?;
        let key = Key::parse(key).map_err(|_| missing())?;
        let source = app.hub.source();
        source.require_run(run.as_str()).await?;
        let page = source
            .read_page(PageAt::tail(run.as_str(), key.as_str()), want)
            .await?;
        return Ok(Target::Workflow {
            run: run.as_str().to_string(),
            key: key.as_str().to_string(),
            tail: page.next,
            closed: page.closed,
        });
    }
    match meta(app, path, want).await? {
        Some(m) if m.deleted => Err(gone()),
        Some(m) if !m.expired => Ok(Target::Durable(m)),
        _ => Err(missing()),
    }
}

/// The stream's metadata showing `want`, from a standby when there is one.
async fn meta(app: &AppState, path: &str, want: Want) -> Result<Option<Meta>, StoreError> {
    let Some(r) = &app.replicas else {
        return app.store.ds_meta(path).await;
    };
    let shows = |m: &Option<Meta>| match (m, want) {
        (None, _) => false,
        (Some(m), Want::AtLeast(p)) => m.tail >= p || m.closed || m.deleted || m.expired,
        (Some(_), _) => true,
    };
    r.read(|s| async move { s.ds_meta(path).await }, shows, want.mode())
        .await
}

/// What a GET must see of the stream: a live read from a position needs that position
/// (anything newer it waits for); other reads need everything committed before them.
fn wanted(q: &ReadQuery) -> Want {
    match (q.live.as_deref(), q.offset) {
        (Some(_), Some(Start::At(n))) if n > 0 => Want::AtLeast(n),
        (Some(_), Some(Start::At(_))) => Want::Any,
        _ => Want::Everything,
    }
}

/// Concatenates rows as the response body: bytes as they are, JSON as one array.
pub fn body(json: bool, rows: &[(i64, Bytes)]) -> Bytes {
    let len: usize = rows.iter().map(|(_, p)| p.len() + 1).sum();
    let mut out = BytesMut::with_capacity(len + 2);
    if json {
        out.put_u8(b'[');
    }
    for (i, (_, p)) in rows.iter().enumerate() {
        if json && i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(p);
    }
    if json {
        out.put_u8(b']');
    }
    out.freeze()
}

/// The query of a GET.
#[derive(Debug, Default)]
pub struct ReadQuery {
    /// `offset` (absent: the start).
    pub offset: Option<Start>,
    /// `live`.
    pub live: Option<String>,
    /// `cursor`.
    pub cursor: Option<String>,
}

/// Parses the query strictly: a repeated or malformed `offset` is a 400.
pub fn parse_query(q: Option<&str>) -> Result<ReadQuery, ApiError> {
    let mut out = ReadQuery::default();
    let mut seen_offset = false;
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "offset" => {
                if seen_offset {
                    return Err(ApiError::invalid("offset", "given more than once"));
                }
                seen_offset = true;
                out.offset = Some(
                    offsets::parse(&v)
                        .ok_or_else(|| ApiError::invalid("offset", "malformed offset"))?,
                );
            }
            "live" => out.live = Some(v.into_owned()),
            "cursor" => out.cursor = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(out)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh `Stream-Cursor` for a live response.
pub fn cursor(client: Option<&str>) -> String {
    offsets::cursor(unix_now(), client, rand::random::<u32>())
}

/// Resolves a start offset against the snapshot: 400 beyond the tail.
pub fn start_at(start: Start, tail: i64) -> Result<i64, ApiError> {
    match start {
        Start::Now => Ok(tail),
        Start::At(n) if n <= tail => Ok(n),
        Start::At(_) => Err(ApiError::invalid("offset", "beyond the end of the stream")),
    }
}

/// `GET`.
pub async fn get(
    app: &AppState,
    caller: &Caller,
    path: &str,
    query: Option<&str>,
    h: &HeaderMap,
) -> Result<Response, ApiError> {
    let q = parse_query(query)?;
    match q.live.as_deref() {
        None => {}
        Some("long-poll") | Some("sse") if q.offset.is_none() => {
            return Err(ApiError::invalid("offset", "required with live modes"))
        }
        Some("long-poll") | Some("sse") => {}
        Some(_) => return Err(ApiError::invalid("live", "must be long-poll or sse")),
    }
    let target = resolve_at(app, path, wanted(&q)).await?;
    if let Target::Durable(m) = &target {
        if m.ttl_seconds.is_some() {
            app.store.ds_touch(m.id).await?;
        }
    }
    let start = q.offset.unwrap_or(Start::At(0));
    match q.live.as_deref() {
        Some("long-poll") => {
            let _permit = caller.stream_permit(&app.auth)?;
            super::poll::long_poll(app, path, target, start, q.cursor.as_deref()).await
        }
        Some(_) => {
            let permit = caller.stream_permit(&app.auth)?;
            super::live::sse(app, permit, path, target, start, q.cursor.as_deref()).await
        }
        None => catch_up(app, &target, start, h).await,
    }
}

async fn catch_up(
    app: &AppState,
    target: &Target,
    start: Start,
    h: &HeaderMap,
) -> Result<Response, ApiError> {
    let tail = target.tail();
    let from = start_at(start, tail)?;
    let rows = if start == Start::Now {
        Vec::new()
    } else {
        target.read(app, from).await?
    };
    let mut r = chunk_response(target, from, &rows, StatusCode::OK);
    if start == Start::Now {
        r.headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    let next = rows.last().map_or(from, |(n, _)| *n);
    let etag = etag(target, from, &rows);
    set(&mut r, "stream-cursor", cursor(None));
    if header(h, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        set(&mut r, "etag", &etag);
        set(&mut r, "stream-next-offset", offsets::format(next));
        return Ok(r);
    }
    set(&mut r, "etag", &etag);
    set(&mut r, "cache-control", CACHEABLE);
    if rows.is_empty() && !target.closed() {
        // Nothing new on an open stream: a cached copy would hide the next append.
        set(&mut r, "cache-control", "no-cache");
    }
    Ok(r)
}

/// `"{stream}:{start}:{end}[:c]"`, `:c` when the response includes the closure.
pub(crate) fn etag(target: &Target, from: i64, rows: &[(i64, Bytes)]) -> String {
    let next = rows.last().map_or(from, |(n, _)| *n);
    let done = target.closed() && next >= target.tail();
    format!(
        "\"{}:{from}:{next}{}\"",
        target.etag_prefix(),
        if done { ":c" } else { "" }
    )
}

/// Data at an offset never changes, so a response carrying it may be cached and shared
/// (flowgate has no per-user streams).
pub(crate) const CACHEABLE: &str = "public, max-age=60, stale-while-revalidate=300";

/// A data response for `rows` read after `from`, with the offset, up-to-date and closed
/// headers.
pub(crate) fn chunk_response(
    target: &Target,
    from: i64,
    rows: &[(i64, Bytes)],
    status: StatusCode,
) -> Response {
    let next = rows.last().map_or(from, |(n, _)| *n);
    let tail = target.tail().max(next);
    let mut r = (status, body(target.is_json(), rows)).into_response();
    set(&mut r, "content-type", target.content_type());
    if super::media_type(target.content_type()) == super::DEFAULT_CONTENT_TYPE {
        set(&mut r, "content-disposition", "attachment");
    }
    set(&mut r, "stream-next-offset", offsets::format(next));
    if next >= tail {
        set(&mut r, "stream-up-to-date", "true");
        if target.closed() {
            set(&mut r, "stream-closed", "true");
        }
    }
    r
}
