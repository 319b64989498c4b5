//! Server-Sent Events framing and the response wrapper shared by every SSE endpoint.
//!
//! The wrapper sends a comment right after the headers (so proxies and `curl -N` show the
//! connection at once), a heartbeat comment every period, and on shutdown a `retry:` hint
//! before ending, so an open stream never holds up exit. Responses are never compressed.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::AppState;
use crate::error::ApiError;
use crate::every::Every;
use crate::http::access::StreamPermit;

/// Encodes one event. `data` is split into `data:` lines on CR, LF and CRLF.
pub fn event(id: Option<&str>, name: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    if let Some(name) = name {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_u8(b'\n');
    }
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    for line in split_lines(data) {
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// Splits on CRLF, CR or LF (an empty input is one empty line).
pub fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                lines.push(&data[start..i]);
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            b'\n' => {
                lines.push(&data[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(&data[start..]);
    lines
}

/// A comment line (ignored by clients; keeps proxies from timing out).
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// Wraps `frames` as an SSE response with the opening comment, heartbeats and a clean end
/// on shutdown; 503 with `Retry-After` when the connection limit is reached. `client` is the
/// caller's per-client permit, held for as long as the response streams.
pub fn response<S>(app: &AppState, client: StreamPermit, frames: S) -> Result<Response, ApiError>
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let slot = Slot::acquire(app)?;
    let beats = app.heartbeat.stream();
    let stop = app.shutdown.clone().cancelled_owned();
    let frames = super::panics::guard_stream(frames, app.metrics.http_panics.clone());
    let body = async_stream::stream! {
        let _slot = slot;
        let _client = client;
        // The waits on the shared shutdown token and heartbeat live as long as the response:
        // a fresh wait per frame would register and unregister a waiter under their locks
        // for every frame of every connection.
        futures::pin_mut!(frames, beats, stop);
        yield Ok::<Bytes, std::convert::Infallible>(comment("flowgate"));
        loop {
            tokio::select! {
                biased;
                _ = stop.as_mut() => {
                    yield Ok(Bytes::from_static(b"retry: 1000\n: server shutting down\n\n"));
                    break;
                }
                f = frames.next() => match f {
                    Some(f) => yield Ok(f),
                    None => break,
                },
                Some(_) = beats.next() => yield Ok(comment("heartbeat")),
            }
        }
    };
    Ok(stream_response(Body::from_stream(body)))
}

/// A place among the process's SSE connections (`FLOWGATE_MAX_SSE`), counted in the
/// `sse_open` gauge while held.
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _open: GaugeGuard,
}

impl Slot {
    /// Takes a place, or answers 503 with `Retry-After` when all are taken.
    pub fn acquire(app: &AppState) -> Result<Slot, ApiError> {
        let Ok(permit) = app.sse_slots.clone().try_acquire_owned() else {
            app.metrics.sse_rejected.inc();
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "SSE connection limit reached",
            )
            .with_header("retry-after", "5"));
        };
        Ok(Slot {
            _permit: permit,
            _open: GaugeGuard::inc(&app.metrics.sse_open),
        })
    }
}

/// One heartbeat ticker for every SSE response of the process (a timer per connection
/// costs memory and timer-wheel work for each of thousands of idle readers).
#[derive(Clone)]
pub struct Heartbeat(watch::Receiver<u64>);

impl Heartbeat {
    /// Ticks every `period` until `stop` fires.
    pub fn start(period: Duration, tracker: &TaskTracker, stop: CancellationToken) -> Heartbeat {
        let (tx, rx) = watch::channel(0u64);
        tracker.spawn(async move {
            let mut every = Every::after(period, stop);
            while every.tick().await {
                tx.send_modify(|n| *n += 1);
            }
        });
        Heartbeat(rx)
    }

    /// The ticks from now on, as a stream (ends when the ticker stops). One stream held for a
    /// whole response keeps its place among the ticker's waiters.
    pub fn stream(&self) -> tokio_stream::wrappers::WatchStream<u64> {
        tokio_stream::wrappers::WatchStream::from_changes(self.0.clone())
    }
}

/// A 200 with the SSE headers every event stream carries: `text/event-stream`,
/// `Cache-Control: no-cache`, `X-Accel-Buffering: no` (and never a content encoding).
pub fn stream_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Counts something open in a gauge for as long as it lives.
pub struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    /// Increments `g` now and decrements it on drop.
    pub fn inc(g: &prometheus::IntGauge) -> GaugeGuard {
        g.inc();
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// True if the client asked for an event stream.
pub fn wants_sse(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        assert_eq!(
            &event(Some("3"), None, b"{\"a\":1}")[..],
            b"id: 3\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &event(None, Some("end"), b"a\r\nb\rc\nd")[..],
            b"event: end\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(split_lines(b""), vec![b"" as &[u8]]);
        assert_eq!(split_lines(b"x\n"), vec![b"x" as &[u8], b""]);
    }
}
