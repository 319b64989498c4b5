//! `live=long-poll`: answers at once when data is past the offset; otherwise waits (up to
//! the long-poll period) on the stream's hub topic and answers with the rows the follower
//! holds when it wakes, which for this process's own appends means no database read at all.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};

use super::http::set;
use super::offsets::{self, Start};
use super::read::{chunk_response, cursor, etag, resolve, start_at, Target, CACHEABLE};
use crate::error::ApiError;
use crate::http::AppState;
use crate::hub::StreamItem;
use crate::store::durable_streams::{CHUNK_BYTES, CHUNK_ROWS};

/// 204 at the tail: nothing new (or closed).
fn no_content(next: i64, closed: bool, cursor: Option<String>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    set(&mut r, "stream-next-offset", offsets::format(next));
    set(&mut r, "stream-up-to-date", "true");
    if closed {
        set(&mut r, "stream-closed", "true");
    }
    if let Some(c) = cursor {
        set(&mut r, "stream-cursor", c);
    }
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

/// `GET …?live=long-poll` on `target`, read just before.
pub async fn long_poll(
    app: &AppState,
    path: &str,
    target: Target,
    start: Start,
    client_cursor: Option<&str>,
) -> Result<Response, ApiError> {
    let from = start_at(start, target.tail())?;
    let live_response = |target: &Target, rows: Vec<(i64, Bytes)>| {
        let mut r = chunk_response(target, from, &rows, StatusCode::OK);
        set(&mut r, "stream-cursor", cursor(client_cursor));
        // Safe to cache when keyed by offset and cursor (the cursor moves on).
        set(&mut r, "etag", etag(target, from, &rows));
        set(&mut r, "cache-control", CACHEABLE);
        r
    };
    if from < target.tail() {
        let rows = target.read(app, from).await?;
        return Ok(live_response(&target, rows));
    }
    if target.closed() {
        return Ok(no_content(from, true, None));
    }
    // The follower starts with its own read from `from`, after subscribing: an append that
    // committed since `target` was read is not missed.
    let (run, key) = target.topic();
    let items = app.hub.subscribe_stream(&run, &key).follow(from);
    futures::pin_mut!(items);
    let first = tokio::select! {
        i = items.next() => i,
        _ = tokio::time::sleep(super::long_poll(app)) => None,
        _ = app.shutdown.cancelled() => None,
    };
    match first {
        Some(StreamItem::Record(o, p)) => {
            // Answer with what the follower has now: committed rows, in order, with no
            // read of our own (this process's appends arrive without one).
            let mut rows = vec![(o + 1, p)];
            let (mut size, mut closed) = (rows[0].1.len(), false);
            while rows.len() < CHUNK_ROWS as usize && size < CHUNK_BYTES as usize {
                match items.next().now_or_never().flatten() {
                    Some(StreamItem::Record(o, p)) => {
                        size += p.len();
                        rows.push((o + 1, p));
                    }
                    Some(StreamItem::End(_)) => {
                        closed = true;
                        break;
                    }
                    Some(StreamItem::Gone(_)) | None => break,
                }
            }
            let next = rows.last().map_or(from, |(n, _)| *n);
            Ok(live_response(&target.at(next, closed), rows))
        }
        Some(StreamItem::End(_) | StreamItem::Gone(_)) => {
            let target = resolve(app, path).await?;
            Ok(no_content(target.tail().max(from), target.closed(), None))
        }
        None => Ok(no_content(from, false, Some(cursor(client_cursor)))),
    }
}
