//! Method dispatch for `/v1/stream/{path}` and the write side: PUT (create or fork), POST
//! (append, close), HEAD (metadata), DELETE.

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::create::{self, Create, Created};
use super::offsets;
use super::producer::Producer;
use super::read::{self, Target};
use super::routes::StreamRequest;
use super::write::{Append, Appended};
use super::{closed_flag, fail, header, hub_key, HUB_NAMESPACE, MAX_BODY, MAX_PATH};
use crate::error::ApiError;
use crate::http::AppState;
use crate::note::{Note, NoteKind};
use crate::store::durable_streams::{DeleteOutcome, DsOutcome, Meta};

/// Routes every method on a stream URL.
pub async fn dispatch(req: StreamRequest) -> Response {
    let StreamRequest {
        app,
        caller,
        method,
        uri,
        path,
        headers,
        body,
    } = req;
    let query = uri.query().map(str::to_string);
    let result = async {
        if let Some(rest) = path.strip_prefix("__ds/") {
            super::access::subscription(&caller, &method, rest, &headers)?;
            let body = read_body(body).await?;
            return super::subs::handle(&app, &method, rest, &headers, body).await;
        }
        super::access::stream(&caller, &method, &path)?;
        check_path(&path)?;
        if method == Method::OPTIONS {
            return Ok(super::preflight());
        }
        super::offsets::check_header_sizes(&headers)?;
        if path.starts_with(super::WORKFLOW_PREFIX) {
            return match method {
                Method::GET => read::get(&app, &caller, &path, query.as_deref(), &headers).await,
                Method::HEAD => head(&app, &path).await,
                _ => Err(not_allowed("GET, HEAD, OPTIONS")),
            };
        }
        match method {
            Method::GET => read::get(&app, &caller, &path, query.as_deref(), &headers).await,
            Method::HEAD => head(&app, &path).await,
            Method::PUT => put(&app, &uri, &path, &headers, body).await,
            Method::POST => post(&app, &path, &headers, body).await,
            Method::DELETE => delete(&app, &path).await,
            _ => Err(not_allowed("GET, HEAD, POST, PUT, DELETE, OPTIONS")),
        }
    }
    .await;
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    super::common_headers(&app, &mut resp);
    resp
}

fn not_allowed(allow: &'static str) -> ApiError {
    fail(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this stream",
    )
    .with_header("allow", allow)
}

fn check_path(path: &str) -> Result<(), ApiError> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(ApiError::invalid(
            "path",
            format!("must be 1 to {MAX_PATH} bytes"),
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "path",
            "must not contain control characters",
        ));
    }
    if path == "__ds" || path.starts_with("__ds/") {
        return Err(fail(
            StatusCode::NOT_FOUND,
            "reserved",
            "the __ds namespace is reserved",
        ));
    }
    Ok(())
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    to_bytes(body, MAX_BODY).await.map_err(|e| {
        let too_big = format!("{e:?}").contains("LengthLimit");
        if too_big {
            fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("bodies are limited to {MAX_BODY} bytes"),
            )
        } else {
            ApiError::invalid("body", format!("could not read the body: {e}"))
        }
    })
}

/// `Content-Type`, trimmed; `None` if absent or blank.
fn content_type(h: &HeaderMap) -> Option<String> {
    header(h, "content-type")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Sets a header from a string (skipped if not a valid header value).
pub(crate) fn set(r: &mut Response, name: &'static str, value: impl AsRef<str>) {
    if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
        r.headers_mut().insert(name, v);
    }
}

/// Metadata headers shared by PUT and HEAD.
fn meta_headers(r: &mut Response, m: &Meta) {
    set(r, "content-type", &m.content_type);
    set(r, "stream-next-offset", offsets::format(m.tail));
    if let Some(ttl) = m.ttl_seconds {
        set(r, "stream-ttl", ttl.to_string());
    }
    if let Some(at) = m.expires_at {
        set(
            r,
            "stream-expires-at",
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
    }
    if m.closed {
        set(r, "stream-closed", "true");
    }
}

/// Strips a scheme and host and the `/v1/stream/` prefix from a `Stream-Forked-From` value.
fn source_path(v: &str) -> String {
    let v = v.trim();
    let v = match v.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or(""),
        None => v,
    };
    let v = v.split(['?', '#']).next().unwrap_or_default();
    let v = v.strip_prefix("/v1/stream/").unwrap_or(v);
    v.trim_start_matches('/').to_string()
}

async fn put(
    app: &AppState,
    uri: &Uri,
    path: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (ttl, expires_at) = Create::lifetime(h)?;
    let req = Create {
        path: path.to_string(),
        content_type: content_type(h),
        ttl,
        expires_at,
        closed: closed_flag(h),
        fork: Create::fork(h, path, source_path)?,
        body: read_body(body).await?,
    };
    let (status, m) = match create::create(&app.store, &req).await? {
        Created::New(m) => {
            if m.tail > 0 {
                tokio::spawn(super::wake::activity(app.clone(), path.to_string()));
            }
            (StatusCode::CREATED, m)
        }
        Created::Existing(m) => (StatusCode::OK, m),
        Created::Conflict(msg) => return Err(fail(StatusCode::CONFLICT, "conflict", msg)),
        Created::Invalid(msg) => return Err(ApiError::invalid("body", msg)),
        Created::SourceMissing => {
            return Err(fail(
                StatusCode::NOT_FOUND,
                "not_found",
                "the fork source does not exist",
            ))
        }
    };
    let mut r = status.into_response();
    meta_headers(&mut r, &m);
    let host = header(h, "host").unwrap_or("localhost");
    set(&mut r, "location", format!("http://{host}{}", uri.path()));
    Ok(r)
}

/// An append's request: its producer, close flag, body and content type, checked.
async fn append_request(path: &str, h: &HeaderMap, body: Body) -> Result<Append, ApiError> {
    let producer = Producer::from_headers(h)?;
    let close = closed_flag(h);
    let body = read_body(body).await?;
    let ct = content_type(h);
    if body.is_empty() && !close {
        return Err(ApiError::invalid("body", "an append needs a body"));
    }
    if !body.is_empty() && ct.is_none() {
        return Err(ApiError::invalid(
            "Content-Type",
            "an append with a body needs one",
        ));
    }
    Ok(Append {
        path: path.to_string(),
        content_type: ct,
        body,
        close,
        seq: header(h, "stream-seq").map(|s| s.as_bytes().to_vec()),
        producer,
    })
}

async fn post(app: &AppState, path: &str, h: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let req = append_request(path, h, body).await?;
    let (producer, close) = (req.producer.clone(), req.close);
    let Appended {
        outcome,
        new_data,
        invalid,
    } = req.run(app.notifier.group()).await?;
    let mut r = match outcome {
        DsOutcome::Done {
            id,
            tail,
            closed,
            subscribed,
        } => {
            // Readers in this process were woken by the commit. A close also announces the
            // close flag, so a standby reader waits for the marker itself.
            if close && closed {
                app.notifier.publish(Note::new(
                    NoteKind::Stream,
                    HUB_NAMESPACE,
                    hub_key(id),
                    tail | crate::replica::CLOSED_FLAG,
                ));
            }
            // Subscriptions only when there are any.
            if new_data && subscribed {
                tokio::spawn(super::wake::activity(app.clone(), path.to_string()));
            }
            let status = if producer.is_some() && new_data {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            };
            let seqs = producer.map(|p| (p.epoch.to_string(), p.seq.to_string()));
            appended(status, tail, closed, seqs)
        }
        DsOutcome::Duplicate {
            tail,
            closed,
            epoch,
            seq,
        } => {
            let seqs = Some((epoch.to_string(), seq.to_string()));
            appended(StatusCode::NO_CONTENT, tail, closed, seqs)
        }
        refused => return Err(refusal(&refused, invalid)),
    };
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(r)
}

/// An append's answer: the new tail, whether the stream is closed, and the producer's
/// epoch and sequence.
fn appended(
    status: StatusCode,
    tail: i64,
    closed: bool,
    producer: Option<(String, String)>,
) -> Response {
    let mut r = status.into_response();
    set(&mut r, "stream-next-offset", offsets::format(tail));
    if closed {
        set(&mut r, "stream-closed", "true");
    }
    if let Some((epoch, seq)) = producer {
        set(&mut r, "producer-epoch", epoch);
        set(&mut r, "producer-seq", seq);
    }
    r
}

/// The error for an append that was not made.
fn refusal(outcome: &DsOutcome, invalid: Option<String>) -> ApiError {
    let conflict = |msg: &str| fail(StatusCode::CONFLICT, "conflict", msg);
    match *outcome {
        DsOutcome::Missing => missing(),
        DsOutcome::Gone => gone(),
        DsOutcome::Closed { tail } => conflict("the stream is closed")
            .with_header("stream-closed", "true")
            .with_header("stream-next-offset", offsets::format(tail)),
        DsOutcome::TypeMismatch => conflict("content type differs from the stream's"),
        DsOutcome::SeqConflict => conflict("Stream-Seq must be greater than the last one"),
        DsOutcome::Invalid => ApiError::invalid("body", invalid.unwrap_or_default()),
        _ => super::producer::refusal(outcome)
            .unwrap_or_else(|| ApiError::internal("an append that was made is not an error")),
    }
}

/// 404 for a stream that does not exist (or expired).
pub(crate) fn missing() -> ApiError {
    fail(StatusCode::NOT_FOUND, "not_found", "no such stream")
}

/// 410 for a stream deleted while forks still read it.
pub(crate) fn gone() -> ApiError {
    fail(StatusCode::GONE, "gone", "the stream was deleted")
}

async fn head(app: &AppState, path: &str) -> Result<Response, ApiError> {
    let target = read::resolve(app, path).await?;
    let mut r = StatusCode::OK.into_response();
    match &target {
        Target::Durable(m) => meta_headers(&mut r, m),
        Target::Workflow { .. } => {
            set(&mut r, "content-type", target.content_type());
            set(&mut r, "stream-next-offset", offsets::format(target.tail()));
            if target.closed() {
                set(&mut r, "stream-closed", "true");
            }
        }
    }
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn delete(app: &AppState, path: &str) -> Result<Response, ApiError> {
    match app.store.ds_delete(path).await? {
        DeleteOutcome::Deleted(id) => {
            app.notifier
                .publish(Note::new(NoteKind::Stream, HUB_NAMESPACE, hub_key(id), 0));
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        DeleteOutcome::Missing => Err(missing()),
        DeleteOutcome::Gone => Err(gone()),
    }
}
