//! Following a run: one stream by long-poll ([`Client::follow_stream`]) and the run's whole
//! live view over SSE ([`Client::live`]), both resuming after a dropped connection.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::{Client, ClientError, RunInfo};

/// One stream record.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Record {
    /// Its offset.
    pub offset: i64,
    /// Its value.
    pub value: Value,
}

#[derive(Deserialize)]
struct Polled {
    records: Vec<Record>,
    next: i64,
    closed: bool,
}

/// One frame of `GET /v1/workflows/{id}/live`.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The run's status (first frame, then on every change).
    Status(RunInfo),
    /// An event was set.
    Event {
        /// Its key.
        key: String,
        /// Its value.
        value: Value,
    },
    /// A stream record.
    Record {
        /// The stream.
        key: String,
        /// The record's offset.
        offset: i64,
        /// Its value.
        value: Value,
    },
    /// A stream was closed.
    Close {
        /// The stream.
        key: String,
    },
    /// A frame of another kind (e.g. `limit`), by name.
    Other(String),
}

/// Most reconnects in a row after transport errors before [`Client::live`] gives up.
const MAX_RECONNECTS: u32 = 10;

fn parse_frame(name: &str, data: &str) -> Result<LiveEvent, serde_json::Error> {
    let v: Value = serde_json::from_str(data)?;
    let key = || v["key"].as_str().unwrap_or_default().to_string();
    Ok(match name {
        "status" => LiveEvent::Status(serde_json::from_value(v.clone())?),
        "event" => LiveEvent::Event {
            key: key(),
            value: v["value"].clone(),
        },
        "record" => LiveEvent::Record {
            key: key(),
            offset: v["offset"].as_i64().unwrap_or(-1),
            value: v["value"].clone(),
        },
        "close" => LiveEvent::Close { key: key() },
        other => LiveEvent::Other(other.to_string()),
    })
}

impl Client {
    /// Follows stream `key` from offset `from` until it closes, by long-poll. A failed poll
    /// is retried from the last offset received (up to 10 times in a row), so records
    /// arrive exactly once and in order.
    pub fn follow_stream(
        &self,
        id: &str,
        key: &str,
        from: i64,
    ) -> impl Stream<Item = Result<Record, ClientError>> + Send + 'static {
        let client = self.clone();
        let path = format!("/v1/workflows/{id}/streams/{key}/poll");
        async_stream::stream! {
            let mut pos = from;
            let mut failures = 0;
            loop {
                let polled = async {
                    let r = client.req(reqwest::Method::GET, &path)
                        .query(&[("from", pos.to_string()), ("timeout", "30".to_string())])
                        .send().await.map_err(|e| client.transport(e))?;
                    let v = Self::json(r).await?;
                    serde_json::from_value::<Polled>(v.clone()).map_err(|e| ClientError::Api {
                        status: 200, code: "unexpected_body".into(), message: e.to_string(), body: v,
                    })
                }.await;
                match polled {
                    Ok(p) => {
                        failures = 0;
                        let start = pos;
                        for r in p.records.into_iter().filter(|r| r.offset >= start) {
                            pos = r.offset + 1;
                            yield Ok(r);
                        }
                        pos = pos.max(p.next);
                        if p.closed {
                            return;
                        }
                    }
                    Err(e @ ClientError::Api { .. }) => {
                        yield Err(e);
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures >= 10 {
                            yield Err(e);
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200 * failures)).await;
                    }
                }
            }
        }
    }

    /// Follows run `id`'s live view (`/live`: status, events, every stream's records and
    /// closes) for as long as the caller reads. A dropped connection is resumed with
    /// `Last-Event-ID` (up to 10 failures in a row), so nothing repeats or goes missing; an
    /// error answer from the server ends the stream with that error.
    pub fn live(
        &self,
        id: &str,
    ) -> impl Stream<Item = Result<LiveEvent, ClientError>> + Send + 'static {
        let client = self.clone();
        let path = format!("/v1/workflows/{id}/live");
        async_stream::stream! {
            let mut last_id = String::new();
            let mut failures = 0u32;
            loop {
                let mut req = client.req(reqwest::Method::GET, &path).header("accept", "text/event-stream");
                if !last_id.is_empty() {
                    req = req.header("last-event-id", &last_id);
                }
                let failure = match client.send_req(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        let mut frames = resp.bytes_stream().eventsource();
                        let mut err = None;
                        while let Some(frame) = frames.next().await {
                            match frame {
                                Ok(ev) => {
                                    failures = 0;
                                    if !ev.id.is_empty() {
                                        last_id = ev.id.clone();
                                    }
                                    match parse_frame(&ev.event, &ev.data) {
                                        Ok(f) => yield Ok(f),
                                        Err(e) => {
                                            yield Err(ClientError::Api {
                                                status: 200, code: "unexpected_body".into(),
                                                message: e.to_string(), body: Value::String(ev.data),
                                            });
                                            return;
                                        }
                                    }
                                }
                                Err(e) => {
                                    err = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                        ClientError::Api {
                            status: 0, code: "disconnected".into(),
                            message: err.unwrap_or_else(|| "the server ended the live view".into()),
                            body: Value::Null,
                        }
                    }
                    Ok(resp) => {
                        // An error answer (unknown run, no permission, bad cursor): final.
                        yield Err(Self::json(resp).await.err().unwrap_or(ClientError::Api {
                            status: 500, code: "unexpected_status".into(),
                            message: "the live view answered without an event stream".into(),
                            body: Value::Null,
                        }));
                        return;
                    }
                    Err(e) => e,
                };
                failures += 1;
                if failures > MAX_RECONNECTS {
                    yield Err(failure);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
            }
        }
    }
}
