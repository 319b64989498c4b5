//! `live=sse`: `data` events carrying what was appended, each followed by a `control` event
//! with the next offset, the cursor and the up-to-date or closed flags.
//!
//! Text and JSON streams are sent as UTF-8 (a `text/*` payload that is not UTF-8 is sent
//! lossily, and CR or CRLF inside a payload arrives as LF, since SSE splits lines on them);
//! every other content type is sent base64-encoded, with `Stream-SSE-Data-Encoding: base64`.
//! A control event also serves as the keep-alive, once per long-poll period; the connection
//! is closed after [`super::SSE_MAX_AGE`] and the client resumes from its last offset.

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use serde_json::json;

use super::offsets::{self, Start};
use super::read::{body, cursor, resolve, resolve_at, start_at, Target};
use super::{is_text, SSE_MAX_AGE};
use crate::error::ApiError;
use crate::http::access::StreamPermit;
use crate::http::sse::{split_lines, stream_response, Slot};
use crate::http::AppState;
use crate::hub::StreamItem;
use crate::replica::Want;

/// Bytes gathered into one data event before it is sent.
const EVENT_BYTES: usize = 256 << 10;

/// How a data event encodes payloads.
#[derive(Clone, Copy)]
enum Encoding {
    Json,
    Text,
    Base64,
}

impl Encoding {
    /// JSON and text streams as they are; everything else base64.
    fn of(target: &Target) -> Encoding {
        if target.is_json() {
            Encoding::Json
        } else if is_text(target.content_type()) {
            Encoding::Text
        } else {
            Encoding::Base64
        }
    }

    /// Marks a base64 response with `Stream-SSE-Data-Encoding`.
    fn label(self, mut resp: Response) -> Response {
        if matches!(self, Encoding::Base64) {
            resp.headers_mut().insert(
                "stream-sse-data-encoding",
                HeaderValue::from_static("base64"),
            );
        }
        resp
    }
}

fn data_event(enc: Encoding, rows: &[(i64, Bytes)]) -> Bytes {
    let payload = match enc {
        Encoding::Json => body(true, rows),
        Encoding::Text => {
            let raw = body(false, rows);
            match std::str::from_utf8(&raw) {
                Ok(_) => raw,
                Err(_) => Bytes::from(String::from_utf8_lossy(&raw).into_owned()),
            }
        }
        Encoding::Base64 => {
            Bytes::from(base64::engine::general_purpose::STANDARD.encode(body(false, rows)))
        }
    };
    event("data", &payload)
}

/// Frames one event as `event: NAME` and one `data:` line per payload line. The space after
/// `data:` is only written when the line itself starts with one (parsers strip one space).
pub fn event(name: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_u8(b'\n');
    for line in split_lines(data) {
        out.put_slice(if line.first() == Some(&b' ') {
            b"data: "
        } else {
            b"data:"
        });
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// A control event.
fn control(next: i64, cursor: Option<&str>, up_to_date: bool, closed: bool) -> Bytes {
    let mut c = json!({ "streamNextOffset": offsets::format(next) });
    if closed {
        c["streamClosed"] = json!(true);
    } else if let Some(cur) = cursor {
        c["streamCursor"] = json!(cur);
    }
    if up_to_date && !closed {
        c["upToDate"] = json!(true);
    }
    event("control", c.to_string().as_bytes())
}

/// Opens the SSE response for `target` from `start`.
pub async fn sse(
    app: &AppState,
    client: StreamPermit,
    path: &str,
    target: Target,
    start: Start,
    client_cursor: Option<&str>,
) -> Result<Response, ApiError> {
    // The process-wide SSE connection limit and gauge apply here too.
    let slot = Slot::acquire(app)?;
    let (run, key) = target.topic();
    let sub = app.hub.subscribe_stream(&run, &key);
    // Read again after subscribing so nothing falls between the two; what the caller
    // already saw is enough (the follower reads anything newer itself), so a standby is
    // not made to replay everything committed since.
    let target = resolve_at(app, path, Want::AtLeast(target.tail())).await?;
    let from = start_at(start, target.tail())?;
    let enc = Encoding::of(&target);
    let keepalive = super::long_poll(app);
    let stop = app.shutdown.clone().cancelled_owned();
    let app = app.clone();
    let path = path.to_string();
    let client_cursor = client_cursor.map(str::to_string);
    let cursor_now = move || cursor(client_cursor.as_deref());
    let stream = async_stream::stream! {
        let _slot = slot;
        let _client = client;
        let deadline = tokio::time::sleep(SSE_MAX_AGE);
        let mut known_tail = target.tail();
        let mut pos = from;
        if from >= known_tail {
            let closed = target.closed();
            yield Ok::<Bytes, std::convert::Infallible>(
                control(pos, Some(&cursor_now()), true, closed),
            );
            if closed {
                return;
            }
        }
        let items = sub.follow(from);
        futures::pin_mut!(items, stop, deadline);
        loop {
            let first = tokio::select! {
                biased;
                _ = stop.as_mut() => break,
                _ = deadline.as_mut() => break,
                i = items.next() => match i {
                    Some(i) => i,
                    None => break,
                },
                _ = tokio::time::sleep(keepalive) => {
                    yield Ok(control(pos, Some(&cursor_now()), pos >= known_tail, false));
                    continue;
                }
            };
            let (rows, end) = gather(first, items.as_mut());
            let mut out = BytesMut::new();
            if let Some((last, _)) = rows.last() {
                pos = *last;
                known_tail = known_tail.max(pos);
                out.put(data_event(enc, &rows));
            }
            if end {
                // Closed, or deleted (then the connection just ends).
                let closed = matches!(resolve(&app, &path).await, Ok(t) if t.closed());
                if closed {
                    out.put(control(pos, None, true, true));
                }
                if !out.is_empty() {
                    yield Ok(out.freeze());
                }
                break;
            }
            out.put(control(pos, Some(&cursor_now()), pos >= known_tail, false));
            yield Ok(out.freeze());
        }
    };
    Ok(enc.label(stream_response(Body::from_stream(stream))))
}

/// `first` and every item already waiting behind it, up to [`EVENT_BYTES`] of payload, as
/// (next offset, payload) rows for one data event; true when the stream ended among them.
fn gather<S>(first: StreamItem, mut items: std::pin::Pin<&mut S>) -> (Vec<(i64, Bytes)>, bool)
where
    S: futures::Stream<Item = StreamItem>,
{
    let mut rows = Vec::new();
    let mut size = 0;
    let mut item = Some(first);
    while let Some(i) = item.take() {
        match i {
            StreamItem::Record(o, p) => {
                size += p.len();
                rows.push((o + 1, p));
            }
            StreamItem::End(_) | StreamItem::Gone(_) => return (rows, true),
        }
        if size >= EVENT_BYTES {
            break;
        }
        item = items.next().now_or_never().flatten();
    }
    (rows, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_keeps_leading_spaces_and_splits_lines() {
        assert_eq!(
            &event("data", b"a\nb")[..],
            b"event: data\ndata:a\ndata:b\n\n"
        );
        assert_eq!(&event("data", b" x")[..], b"event: data\ndata:  x\n\n");
        assert_eq!(
            &event("data", b"ok\r\n\r\nevent: control")[..],
            b"event: data\ndata:ok\ndata:\ndata:event: control\n\n"
        );
        let c = control(3, Some("7"), true, false);
        assert_eq!(
            std::str::from_utf8(&c).unwrap(),
            "event: control\ndata:{\"streamCursor\":\"7\",\"streamNextOffset\":\"0000000000000000_0000000000000003\",\"upToDate\":true}\n\n"
        );
        let c = control(3, Some("7"), true, true);
        assert!(!std::str::from_utf8(&c).unwrap().contains("streamCursor"));
    }
}
