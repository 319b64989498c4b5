//! [`Client`]: drives a flowgate server over HTTP — start or enqueue workflows, await
//! results, send messages, read events, follow streams with resume — without touching the
//! database. The `run` and `tail` commands are built on it.

use std::time::Duration;

use futures::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not complete (connection refused, reset, …).
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code from the body.
        code: String,
        /// Message from the body.
        message: String,
        /// The whole body.
        body: Value,
    },
    /// The run did not finish in time.
    #[error("run {0} did not finish in time")]
    Timeout(String),
    /// The run finished without success.
    #[error("run {id} ended {status}: {error}")]
    Failed {
        /// Run id.
        id: String,
        /// ERROR or CANCELLED.
        status: String,
        /// Its error value.
        error: Value,
    },
}

/// A run's state as the server reports it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// ENQUEUED, PENDING, SUCCESS, ERROR or CANCELLED.
    pub status: String,
    /// Output, once finished.
    #[serde(default)]
    pub output: Option<Value>,
    /// Error, if it failed.
    #[serde(default)]
    pub error: Option<Value>,
}

impl RunInfo {
    /// True once the run cannot change any more.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "SUCCESS" | "ERROR" | "CANCELLED")
    }
}

/// Options of [`Client::start`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Run id (idempotent start).
    pub id: Option<String>,
    /// Enqueue on this queue.
    pub queue: Option<String>,
    /// Wait up to this long for the result (`?wait=`).
    pub wait: Option<Duration>,
    /// Tags for the run.
    pub tags: Vec<String>,
}

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

/// An HTTP client of one flowgate server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            base: base.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn json(resp: reqwest::Response) -> Result<Value, ClientError> {
        let status = resp.status();
        let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            resp.json().await?
        };
        if status.is_client_error() || status.is_server_error() {
            let e = &body["error"];
            return Err(ClientError::Api {
                status: status.as_u16(),
                code: e["code"].as_str().unwrap_or("unknown").to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
                body,
            });
        }
        Ok(body)
    }

    fn info(v: Value) -> Result<RunInfo, ClientError> {
        serde_json::from_value(v.clone()).map_err(|e| ClientError::Api {
            status: 200,
            code: "unexpected_body".into(),
            message: e.to_string(),
            body: v,
        })
    }

    /// Starts `workflow` (on a queue if `opts.queue`); with `opts.wait`, returns the finished
    /// run if it ends in time.
    pub async fn start(
        &self,
        workflow: &str,
        input: &Value,
        opts: &StartOptions,
    ) -> Result<RunInfo, ClientError> {
        let mut body = json!({"workflow": workflow, "input": input});
        if let Some(id) = &opts.id {
            body["id"] = json!(id);
        }
        if let Some(q) = &opts.queue {
            body["queue"] = json!(q);
        }
        if !opts.tags.is_empty() {
            body["tags"] = json!(opts.tags);
        }
        let mut req = self.http.post(self.url("/v1/workflows")).json(&body);
        if let Some(w) = opts.wait {
            req = req.query(&[("wait", w.as_secs_f64().to_string())]);
        }
        Self::info(Self::json(req.send().await?).await?)
    }

    /// Enqueues `workflow` on `queue`.
    pub async fn enqueue(
        &self,
        queue: &str,
        workflow: &str,
        input: &Value,
    ) -> Result<RunInfo, ClientError> {
        let opts = StartOptions {
            queue: Some(queue.into()),
            ..Default::default()
        };
        self.start(workflow, input, &opts).await
    }

    /// The run's state; with `wait`, once it finishes or after `wait`.
    pub async fn get(&self, id: &str, wait: Option<Duration>) -> Result<RunInfo, ClientError> {
        let mut req = self.http.get(self.url(&format!("/v1/workflows/{id}")));
        if let Some(w) = wait {
            req = req.query(&[("wait", w.as_secs_f64().to_string())]);
        }
        Self::info(Self::json(req.send().await?).await?)
    }

    /// Waits up to `timeout` for the run to finish; its output, or why it did not succeed.
    pub async fn result(&self, id: &str, timeout: Duration) -> Result<Value, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let info = self
                .get(id, Some(left.min(Duration::from_secs(60))))
                .await?;
            if info.is_finished() {
                return match info.status.as_str() {
                    "SUCCESS" => Ok(info.output.unwrap_or(Value::Null)),
                    _ => Err(ClientError::Failed {
                        id: info.id,
                        status: info.status,
                        error: info.error.unwrap_or(Value::Null),
                    }),
                };
            }
            if left.is_zero() {
                return Err(ClientError::Timeout(id.to_string()));
            }
        }
    }

    /// Sends a message; returns its id.
    pub async fn send(
        &self,
        id: &str,
        topic: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<i64, ClientError> {
        let mut req = json!({"topic": topic, "body": body});
        if let Some(k) = idempotency_key {
            req["idempotency_key"] = json!(k);
        }
        let r = self
            .http
            .post(self.url(&format!("/v1/workflows/{id}/messages")))
            .json(&req)
            .send()
            .await?;
        Ok(Self::json(r).await?["message_id"].as_i64().unwrap_or(-1))
    }

    /// Cancels a run; returns its status afterwards.
    pub async fn cancel(&self, id: &str) -> Result<String, ClientError> {
        let r = self
            .http
            .post(self.url(&format!("/v1/workflows/{id}/cancel")))
            .send()
            .await?;
        Ok(Self::json(r).await?["status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Every event of the run: `{key: {value, version}}`.
    pub async fn events(&self, id: &str) -> Result<Value, ClientError> {
        let r = self
            .http
            .get(self.url(&format!("/v1/workflows/{id}/events")))
            .send()
            .await?;
        Self::json(r).await
    }

    /// Waits up to `timeout` for event `key` newer than `after`: `(value, version)`.
    pub async fn wait_event(
        &self,
        id: &str,
        key: &str,
        after: i64,
        timeout: Duration,
    ) -> Result<Option<(Value, i64)>, ClientError> {
        let r = self
            .http
            .get(self.url(&format!("/v1/workflows/{id}/events/{key}")))
            .query(&[
                ("after", after.to_string()),
                ("timeout", timeout.as_secs_f64().to_string()),
            ])
            .send()
            .await?;
        let v = Self::json(r).await?;
        Ok(v["version"].as_i64().map(|ver| (v["value"].clone(), ver)))
    }

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
        let url = self.url(&format!("/v1/workflows/{id}/streams/{key}/poll"));
        async_stream::stream! {
            let mut pos = from;
            let mut failures = 0;
            loop {
                let polled = async {
                    let r = client.http.get(&url)
                        .query(&[("from", pos.to_string()), ("timeout", "30".to_string())])
                        .send().await?;
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
}
