//! [`WorkflowContext`]: what workflow code calls. Every operation takes the next step
//! number; if that step is recorded the recorded outcome is returned and nothing runs again,
//! otherwise the operation runs and its outcome is recorded — for events, stream records,
//! sends and children in the same transaction as the effect itself.
//!
//! Effects (events, stream records, messages) live in [`super::effects`], waiting operations
//! (`recv`, `sleep`, child results) in [`super::waits`]. Notes are published only after a
//! commit, never inside a transaction.

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
use crate::note::{Note, NoteKind};
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
}
