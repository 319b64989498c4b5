//! [`Client`]: drives a flowgate server over HTTP — start or enqueue workflows, await
//! results, send messages, read events, follow streams with resume, follow a run's `/live`
//! view, approve or reject, finish external runs — without touching the database. The
//! command-line client commands (`run`, `tail`, `approve`, `reject`, `finish`) are built on it.

mod decide;
mod follow;

pub use decide::Decided;
pub use follow::{LiveEvent, Record};

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// Where the client commands look for the server unless told (`--url`, `FLOWGATE_URL`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached at all (nothing listening, unknown host, …).
    #[error("cannot reach the flowgate server at {base} ({cause}); is `flowgate serve` running there? (set --url or FLOWGATE_URL)")]
    Unreachable {
        /// The server address.
        base: String,
        /// The innermost cause, e.g. "Connection refused (os error 111)".
        cause: String,
    },
    /// The request did not complete (reset, timeout, a body that is not JSON, …).
    #[error("request failed: {}", chain(.0))]
    Http(reqwest::Error),
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

/// `e` and every source below it, joined with ": " (levels that only repeat the one above
/// are left out).
fn chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        let text = next.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cur = next;
    }
    out
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
    /// What the run came to, in words (`approved`, `rejected`, `timed_out`, …), where the
    /// server reports one.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Workflow name, where the server reports it.
    #[serde(default)]
    pub workflow: Option<String>,
    /// A token to read this run (handed out at start).
    #[serde(default)]
    pub token: Option<String>,
}

impl RunInfo {
    /// The JSON the commands print for a run: `{id, status, outcome?, output?, error?, page?}`.
    pub fn summary(&self, page: Option<String>) -> Value {
        let mut v = serde_json::json!({"id": self.id, "status": self.status});
        if let Some(o) = &self.outcome {
            v["outcome"] = o.clone().into();
        }
        if let Some(o) = &self.output {
            v["output"] = o.clone();
        }
        if let Some(e) = &self.error {
            v["error"] = e.clone();
        }
        if let Some(p) = page {
            v["page"] = p.into();
        }
        v
    }

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

/// An HTTP client of one flowgate server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    key: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            base: base.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            key: None,
        }
    }

    /// The same client, sending `Authorization: Bearer <key>` (a server with
    /// `FLOWGATE_API_KEYS`); `None` or an empty key sends none.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.key = key.filter(|k| !k.is_empty());
        self
    }

    /// True if requests carry an API key.
    pub fn has_api_key(&self) -> bool {
        self.key.is_some()
    }

    /// The server address this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The address of run `id`'s page; with `token`, one a browser without the key can open.
    pub fn page_url(&self, id: &str, token: Option<&str>) -> String {
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~')
            .remove(b':')
            .remove(b'@');
        let id = percent_encoding::utf8_percent_encode(id, SEGMENT);
        match token {
            Some(t) => format!("{}/runs/{id}?token={t}", self.base),
            None => format!("{}/runs/{id}", self.base),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the API key, if any.
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// Sends `req`, turning a failure to connect into [`ClientError::Unreachable`].
    async fn send_req(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        req.send().await.map_err(|e| self.transport(e))
    }

    fn transport(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() {
            let mut cur: &(dyn std::error::Error + 'static) = &e;
            while let Some(next) = cur.source() {
                cur = next;
            }
            ClientError::Unreachable {
                base: self.base.clone(),
                cause: cur.to_string(),
            }
        } else {
            ClientError::Http(e)
        }
    }

    async fn json(resp: reqwest::Response) -> Result<Value, ClientError> {
        let status = resp.status();
        let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            resp.json().await.map_err(ClientError::Http)?
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
        let mut req = self.req(reqwest::Method::POST, "/v1/workflows").json(&body);
        if let Some(w) = opts.wait {
            req = req.query(&[("wait", w.as_secs_f64().to_string())]);
        }
        Self::info(Self::json(self.send_req(req).await?).await?)
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
        let mut req = self.req(reqwest::Method::GET, &format!("/v1/workflows/{id}"));
        if let Some(w) = wait {
            req = req.query(&[("wait", w.as_secs_f64().to_string())]);
        }
        Self::info(Self::json(self.send_req(req).await?).await?)
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
            .req(
                reqwest::Method::POST,
                &format!("/v1/workflows/{id}/messages"),
            )
            .json(&req)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        Ok(Self::json(r).await?["message_id"].as_i64().unwrap_or(-1))
    }

    /// Cancels a run; returns its status afterwards.
    pub async fn cancel(&self, id: &str) -> Result<String, ClientError> {
        let r = self
            .req(reqwest::Method::POST, &format!("/v1/workflows/{id}/cancel"))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        Ok(Self::json(r).await?["status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Every event of the run: `{key: {value, version}}`.
    pub async fn events(&self, id: &str) -> Result<Value, ClientError> {
        let r = self
            .req(reqwest::Method::GET, &format!("/v1/workflows/{id}/events"))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
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
            .req(
                reqwest::Method::GET,
                &format!("/v1/workflows/{id}/events/{key}"),
            )
            .query(&[
                ("after", after.to_string()),
                ("timeout", timeout.as_secs_f64().to_string()),
            ])
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let v = Self::json(r).await?;
        Ok(v["version"].as_i64().map(|ver| (v["value"].clone(), ver)))
    }
}
