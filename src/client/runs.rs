//! Runs: start or enqueue workflows, read and await their state, cancel them, send them
//! messages and read their events.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Client, ClientError};

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

impl Client {
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
        let mut message = json!({"topic": topic, "body": body});
        if let Some(k) = idempotency_key {
            message["idempotency_key"] = json!(k);
        }
        let req = self
            .req(
                reqwest::Method::POST,
                &format!("/v1/workflows/{id}/messages"),
            )
            .json(&message);
        let r = self.send_req(req).await?;
        Ok(Self::json(r).await?["message_id"].as_i64().unwrap_or(-1))
    }

    /// Cancels a run; returns its status afterwards.
    pub async fn cancel(&self, id: &str) -> Result<String, ClientError> {
        let req = self.req(reqwest::Method::POST, &format!("/v1/workflows/{id}/cancel"));
        let r = self.send_req(req).await?;
        Ok(Self::json(r).await?["status"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Every event of the run: `{key: {value, version}}`.
    pub async fn events(&self, id: &str) -> Result<Value, ClientError> {
        let req = self.req(reqwest::Method::GET, &format!("/v1/workflows/{id}/events"));
        let r = self.send_req(req).await?;
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
        let req = self
            .req(
                reqwest::Method::GET,
                &format!("/v1/workflows/{id}/events/{key}"),
            )
            .query(&[
                ("after", after.to_string()),
                ("timeout", timeout.as_secs_f64().to_string()),
            ]);
        let r = self.send_req(req).await?;
        let v = Self::json(r).await?;
        Ok(v["version"].as_i64().map(|ver| (v["value"].clone(), ver)))
    }
}
