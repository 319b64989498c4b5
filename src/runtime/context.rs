//! [`WorkflowContext`]: what workflow code calls. Every operation takes the next step
//! number; if that step is recorded the recorded outcome is returned and nothing runs again,
//! otherwise the operation runs and its outcome is recorded — for events, stream records,
//! sends and children in the same transaction as the effect itself.
//!
//! Waiting operations (`recv`, `sleep`, child results) live in [`super::waits`]. Notes are
//! published only after a commit, never inside a transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::steps::{self, decode, Recorded};
use super::{Runtime, WorkflowError, WorkflowResult};
use crate::error::StoreError;
use crate::ids::{Key, RunId, Topic};
use crate::note::{Note, NoteKind};
use crate::store::batch::{Outcome, StepFence};
use crate::store::Store;

/// Retry policy of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepOptions {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles after each one.
    pub backoff: Duration,
    /// Longest delay between retries.
    pub max_backoff: Duration,
}

impl Default for StepOptions {
    fn default() -> Self {
        StepOptions {
            max_attempts: 1,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl StepOptions {
    /// `n` attempts with exponential backoff starting at `backoff`.
    pub fn retries(n: u32, backoff: Duration) -> Self {
        StepOptions {
            max_attempts: n.max(1),
            backoff,
            ..Self::default()
        }
    }
}

/// A child run started by [`WorkflowContext::start_child`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChildHandle {
    /// The child's run id.
    pub id: String,
}

/// The handle workflow code uses for every durable operation. Cheap to clone; clones share
/// the step counter, so operations must be issued in a deterministic order.
#[derive(Clone)]
pub struct WorkflowContext {
    pub(crate) rt: Runtime,
    pub(crate) id: Arc<str>,
    next: Arc<AtomicI32>,
    recorded: Arc<Mutex<HashMap<i32, Recorded>>>,
    /// When each step not yet recorded was taken (its start on the timeline).
    pub(crate) taken: Arc<Mutex<HashMap<i32, DateTime<Utc>>>>,
    /// The outcome reported with `set_outcome`.
    pub(crate) outcome: Arc<Mutex<Option<String>>>,
}

impl WorkflowContext {
    pub(crate) fn new(rt: Runtime, id: &str, recorded: HashMap<i32, Recorded>) -> Self {
        WorkflowContext {
            rt,
            id: id.into(),
            next: Arc::new(AtomicI32::new(0)),
            recorded: Arc::new(Mutex::new(recorded)),
            taken: Arc::default(),
            outcome: Arc::default(),
        }
    }

    /// This run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The database (for side effects inside steps).
    pub fn store(&self) -> &Store {
        &self.rt.inner.store
    }

    pub(crate) fn executor(&self) -> &str {
        &self.rt.inner.options.executor_id
    }

    /// Takes the next step number and, if it is recorded, its outcome.
    pub(crate) fn take_step(&self, name: &str) -> WorkflowResult<(i32, Option<Recorded>)> {
        if self.rt.inner.shutdown.is_cancelled() {
            // Draining: stop between steps; the next process resumes here.
            return Err(WorkflowError::Superseded);
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let rec = self
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n);
        if rec.is_none() {
            self.mark_taken(n);
        }
        if let Some(r) = &rec {
            if r.name != name {
                return Err(WorkflowError::failed(format!(
                    "non-deterministic replay: step {n} was recorded as {:?}, now {name:?}",
                    r.name
                )));
            }
        }
        Ok((n, rec))
    }

    pub(crate) fn publish(&self, kind: NoteKind, key: &str, pos: i64) {
        self.rt
            .inner
            .notifier
            .publish(Note::new(kind, self.id.as_ref(), key, pos));
    }

    /// Runs `f` once as step `name`; on replay returns the recorded output instead.
    pub async fn step<T, E, F, Fut>(&self, name: &str, f: F) -> WorkflowResult<T>
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        self.step_with(name, StepOptions::default(), f).await
    }

    /// Like [`step`](Self::step) with retries: `f` is called again after a backoff until
    /// it succeeds or `opts.max_attempts` is reached; the final failure is recorded.
    pub async fn step_with<T, E, F, Fut>(
        &self,
        name: &str,
        opts: StepOptions,
        mut f: F,
    ) -> WorkflowResult<T>
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let (n, rec) = self.take_step(name)?;
        if let Some(r) = rec {
            return decode(name, r);
        }
        steps::check_owned(self.store(), &self.id, self.executor()).await?;
        let started = std::time::Instant::now();
        let mut delay = opts.backoff;
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => {
                    self.observe_step(name, started);
                    return self.finish_step(n, name, Ok(v)).await;
                }
                Err(e) if attempt >= opts.max_attempts => {
                    self.observe_step(name, started);
                    return self.finish_step(n, name, Err(e.to_string())).await;
                }
                Err(e) => {
                    tracing::warn!(run = %self.id, step = name, attempt, error = %e, "step failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(opts.max_backoff);
                    attempt += 1;
                    steps::check_owned(self.store(), &self.id, self.executor()).await?;
                }
            }
        }
    }

    /// Runs CPU-heavy `f` as step `name` on the bounded blocking pool, so the async
    /// executor (and the HTTP server) stays responsive.
    pub async fn step_blocking<T, E, F>(&self, name: &str, f: F) -> WorkflowResult<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: std::fmt::Display + Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        let (n, rec) = self.take_step(name)?;
        if let Some(r) = rec {
            return decode(name, r);
        }
        steps::check_owned(self.store(), &self.id, self.executor()).await?;
        let started = std::time::Instant::now();
        let outcome = {
            let _permit = self
                .rt
                .inner
                .blocking
                .acquire()
                .await
                .map_err(|_| WorkflowError::Superseded)?;
            tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| WorkflowError::failed(format!("step {name} panicked: {e}")))?
        };
        self.observe_step(name, started);
        self.finish_step(n, name, outcome.map_err(|e| e.to_string()))
            .await
    }

    /// Records a step's duration (metric `flowgate_step_seconds`, and a debug log line).
    fn observe_step(&self, name: &str, started: std::time::Instant) {
        let secs = started.elapsed().as_secs_f64();
        self.rt.inner.hub.metrics().step_seconds.observe(secs);
        tracing::debug!(run = %self.id, step = name, secs, "step finished");
    }

    async fn finish_step<T: Serialize + DeserializeOwned>(
        &self,
        n: i32,
        name: &str,
        outcome: Result<T, String>,
    ) -> WorkflowResult<T> {
        match outcome {
            Ok(v) => {
                let out = serde_json::to_value(&v)?;
                steps::record_alone(
                    self.store(),
                    &self.id,
                    self.executor(),
                    self.step_id(n, name),
                    Some(&out),
                    None,
                )
                .await?;
                self.step_recorded(n);
                Ok(v)
            }
            Err(message) => {
                let err = json!({ "message": message });
                steps::record_alone(
                    self.store(),
                    &self.id,
                    self.executor(),
                    self.step_id(n, name),
                    None,
                    Some(&err),
                )
                .await?;
                self.step_recorded(n);
                Err(WorkflowError::Step {
                    step: name.to_string(),
                    message,
                })
            }
        }
    }

    /// Sets event `key` of this run; returns its version.
    pub async fn set_event(&self, key: &str, value: impl Serialize) -> WorkflowResult<i64> {
        let key = Key::parse(key).map_err(|e| WorkflowError::failed(format!("event key: {e}")))?;
        let name = format!("set_event:{key}");
        let (n, rec) = self.take_step(&name)?;
        if let Some(r) = rec {
            return decode(&name, r);
        }
        let value = serde_json::to_value(value)?;
        let mut tx = steps::begin(self.store(), &self.id, self.executor()).await?;
        let version: i64 = sqlx::query_scalar("SELECT flowgate.set_event_quiet($1, $2, $3)")
            .bind(self.id.as_ref())
            .bind(key.as_str())
            .bind(&value)
            .fetch_one(&mut *tx)
            .await?;
        let sid = self.step_id(n, &name);
        steps::record(&mut tx, &self.id, sid, Some(&json!(version)), None).await?;
        tx.commit().await?;
        self.publish(NoteKind::Event, key.as_str(), version);
        Ok(version)
    }

    /// Appends one record to stream `key`; returns its offset.
    pub async fn write_stream(&self, key: &str, value: impl Serialize) -> WorkflowResult<i64> {
        self.write_stream_batch(key, &[value]).await
    }

    /// Appends records in order to stream `key` in one transaction; returns the first offset.
    pub async fn write_stream_batch<V: Serialize>(
        &self,
        key: &str,
        values: &[V],
    ) -> WorkflowResult<i64> {
        let key = Key::parse(key).map_err(|e| WorkflowError::failed(format!("stream key: {e}")))?;
        let name = format!("write_stream:{key}");
        let (n, rec) = self.take_step(&name)?;
        if let Some(r) = rec {
            return decode(&name, r);
        }
        // Recorded inside the batch (its start is not kept: stream steps are not timed).
        self.taken_at(n);
        let payloads = values
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        // One transaction for the fence, the records, the step and the wake-up, shared
        // with whatever else this process is writing at the moment.
        let fence = StepFence {
            executor: self.executor().to_string(),
            step: n,
            name,
        };
        let outcome = self
            .rt
            .inner
            .notifier
            .group()
            .step_append(self.id.as_ref(), &key, payloads, fence)
            .await?;
        match outcome {
            Outcome::Done { pos, .. } => Ok(pos),
            Outcome::Cancelled => Err(WorkflowError::Cancelled),
            Outcome::Superseded => Err(WorkflowError::Superseded),
            Outcome::RunNotFound => Err(StoreError::RunNotFound.into()),
            Outcome::Conflict => {
                Err(StoreError::Conflict(format!("stream {}/{key} is closed", self.id)).into())
            }
        }
    }

    /// Closes stream `key` (idempotent); returns its final length.
    pub async fn close_stream(&self, key: &str) -> WorkflowResult<i64> {
        let key = Key::parse(key).map_err(|e| WorkflowError::failed(format!("stream key: {e}")))?;
        let name = format!("close_stream:{key}");
        let (n, rec) = self.take_step(&name)?;
        if let Some(r) = rec {
            return decode(&name, r);
        }
        let mut tx = steps::begin(self.store(), &self.id, self.executor()).await?;
        let next: i64 = sqlx::query_scalar("SELECT flowgate.close_stream_quiet($1, $2)")
            .bind(self.id.as_ref())
            .bind(key.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let sid = self.step_id(n, &name);
        steps::record(&mut tx, &self.id, sid, Some(&json!(next)), None).await?;
        tx.commit().await?;
        self.publish(
            NoteKind::Stream,
            key.as_str(),
            next | crate::replica::CLOSED_FLAG,
        );
        Ok(next)
    }

    /// Sends `body` to `topic` of run `to`, exactly once; returns the message id.
    pub async fn send(&self, to: &str, topic: &str, body: impl Serialize) -> WorkflowResult<i64> {
        let to = RunId::parse(to).map_err(|e| WorkflowError::failed(format!("run id: {e}")))?;
        let topic =
            Topic::parse(topic).map_err(|e| WorkflowError::failed(format!("topic: {e}")))?;
        let name = format!("send:{topic}");
        let (n, rec) = self.take_step(&name)?;
        if let Some(r) = rec {
            return decode(&name, r);
        }
        let body = serde_json::to_value(body)?;
        let mut tx = steps::begin(self.store(), &self.id, self.executor()).await?;
        let (id, duplicate): (i64, bool) =
            sqlx::query_as("SELECT message_id, duplicate FROM flowgate.send_quiet($1, $2, $3, $4)")
                .bind(to.as_str())
                .bind(topic.as_str())
                .bind(&body)
                .bind(format!("{}#{n}", self.id))
                .fetch_one(&mut *tx)
                .await
                .map_err(crate::error::StoreError::from)?;
        let sid = self.step_id(n, &name);
        steps::record(&mut tx, &self.id, sid, Some(&json!(id)), None).await?;
        tx.commit().await?;
        if !duplicate {
            self.rt.inner.notifier.publish(Note::new(
                NoteKind::Message,
                to.as_str(),
                topic.as_str(),
                id,
            ));
        }
        Ok(id)
    }
}
