//! The durable workflow runtime: registered workflows, their contexts and recorded steps,
//! queues, executors and recovery.
//!
//! ```text
//! POST /v1/workflows ─► runs::start ─► row (PENDING, ours) ──► spawn ─► WorkflowContext
//!                                    └► row (ENQUEUED) ─► Queue note ─► worker::queue
//!                                                                        (SKIP LOCKED) ─► spawn
//! recovery: at start, our own PENDING runs; every heartbeat, runs of silent executors
//! ```
//!
//! A run is executed by exactly one process at a time (the `executor_id` on its row); every
//! operation of a workflow is a numbered step whose outcome is recorded in `flowgate.steps`
//! in the same transaction as its effect, so a replay after a crash skips it. This module
//! never polls for work: queues wake on notes and re-check only on a slow safety timer.

pub mod config;
pub mod context;
pub mod effects;
pub mod exec;
pub mod outcome;
pub mod recovery;
pub mod registry;
pub mod runs;
pub mod steps;
pub mod waits;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::StoreError;
use crate::hub::Hub;
use crate::notify::Notifier;
use crate::store::Store;

pub use context::{ChildHandle, StepOptions, WorkflowContext};
pub use registry::{Registry, WorkflowType};
pub use runs::{StartOutcome, StartRequest};

/// Name of the queue children and the demo fan-out use.
pub const DEFAULT_QUEUE: &str = "default";

/// Why a workflow (or one of its operations) failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The run was cancelled; it stops before its next step.
    #[error("workflow cancelled")]
    Cancelled,
    /// Another executor owns the run now (this one was presumed dead), or the process is
    /// shutting down: stop without recording anything more.
    #[error("workflow no longer owned by this process")]
    Superseded,
    /// A step failed after its retries.
    #[error("step {step} failed: {message}")]
    Step {
        /// Step name.
        step: String,
        /// The last error.
        message: String,
    },
    /// The workflow itself reported a failure.
    #[error("{0}")]
    Failed(String),
    /// A value could not be (de)serialized.
    #[error("serialization: {0}")]
    Serde(#[from] serde_json::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WorkflowError {
    /// A failure with a message (for workflow code).
    pub fn failed(msg: impl std::fmt::Display) -> Self {
        WorkflowError::Failed(msg.to_string())
    }
}

impl From<sqlx::Error> for WorkflowError {
    fn from(e: sqlx::Error) -> Self {
        WorkflowError::Store(e.into())
    }
}

/// Result of workflow code.
pub type WorkflowResult<T> = Result<T, WorkflowError>;

/// A queue this process serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Queue name.
    pub name: String,
    /// Most runs of this queue this process executes at once.
    pub worker_concurrency: usize,
    /// Most PENDING runs of this queue across all processes (`None` = no cap).
    pub global_concurrency: Option<u32>,
}

impl QueueSpec {
    /// Parses `name:per_process[:global]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut it = s.split(':');
        let name = it.next().unwrap_or_default().to_string();
        crate::ids::WorkflowName::parse(name.clone()).map_err(|e| format!("queue name {e}"))?;
        let per: usize = it
            .next()
            .unwrap_or("8")
            .parse()
            .map_err(|_| "per-process concurrency must be a positive integer".to_string())?;
        let global = it
            .next()
            .map(|g| g.parse::<u32>())
            .transpose()
            .map_err(|_| "global concurrency must be a positive integer".to_string())?;
        if per == 0 || global == Some(0) || it.next().is_some() {
            return Err("expected name:per_process[:global] with positive limits".into());
        }
        Ok(QueueSpec {
            name,
            worker_concurrency: per,
            global_concurrency: global,
        })
    }
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// This process's executor id (stable across restarts to resume its own runs).
    pub executor_id: String,
    /// Time between heartbeats (and orphan checks).
    pub heartbeat: Duration,
    /// An executor silent this long is presumed dead and its runs are taken over.
    pub dead_after: Duration,
    /// A run started this many times without finishing is marked ERROR.
    pub max_attempts: i32,
    /// Safety re-check of the queues when no note arrived.
    pub queue_recheck: Duration,
    /// Threads that may run `step_blocking` work at once.
    pub blocking_threads: usize,
    /// On shutdown, how long a step already running may take to finish.
    pub drain_timeout: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            executor_id: format!("exec-{}", uuid::Uuid::new_v4().simple()),
            heartbeat: Duration::from_secs(5),
            dead_after: Duration::from_secs(30),
            max_attempts: 10,
            queue_recheck: Duration::from_secs(30),
            blocking_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Collects workflows and queues; the app builds the [`Runtime`] from it.
#[derive(Default)]
pub struct RuntimeBuilder {
    registry: Registry,
    queues: Vec<QueueSpec>,
}

impl RuntimeBuilder {
    /// Registers a workflow under `name` (see [`Registry::workflow`]).
    pub fn workflow<I, O, F, Fut>(mut self, name: &str, f: F) -> Self
    where
        I: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
        O: serde::Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = WorkflowResult<O>> + Send + 'static,
    {
        self.registry.register(name, f);
        self
    }

    /// Registers a workflow that `GET /v1/workflow-types` does not list.
    pub fn hidden_workflow<I, O, F, Fut>(self, name: &str, f: F) -> Self
    where
        I: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
        O: serde::Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = WorkflowResult<O>> + Send + 'static,
    {
        let mut builder = self.workflow(name, f);
        builder.registry.hide(name);
        builder
    }

    /// Serves queue `name` with at most `concurrency` runs at once in this process.
    pub fn queue(self, name: &str, concurrency: usize) -> Self {
        self.queue_spec(QueueSpec {
            name: name.to_string(),
            worker_concurrency: concurrency.max(1),
            global_concurrency: None,
        })
    }

    /// Serves a queue described by `spec` (replacing one of the same name).
    pub fn queue_spec(mut self, spec: QueueSpec) -> Self {
        self.queues.retain(|q| q.name != spec.name);
        self.queues.push(spec);
        self
    }

    /// Builds the runtime on the given infrastructure. Call [`Runtime::launch`] to start it.
    pub fn build(
        mut self,
        store: Store,
        hub: Hub,
        notifier: Notifier,
        shutdown: CancellationToken,
        options: RuntimeOptions,
    ) -> Runtime {
        if !self.queues.iter().any(|q| q.name == DEFAULT_QUEUE) {
            self = self.queue(DEFAULT_QUEUE, 8);
        }
        let limits = self
            .queues
            .iter()
            .map(|q| {
                (
                    q.name.clone(),
                    Arc::new(Semaphore::new(q.worker_concurrency)),
                )
            })
            .collect();
        Runtime {
            inner: Arc::new(Inner {
                store,
                hub,
                notifier,
                shutdown,
                blocking: Semaphore::new(options.blocking_threads.max(1)),
                options,
                registry: self.registry,
                queues: self.queues,
                limits,
                tracker: TaskTracker::new(),
                running: Default::default(),
            }),
        }
    }
}

/// The running workflow engine of this process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) hub: Hub,
    pub(crate) notifier: Notifier,
    pub(crate) shutdown: CancellationToken,
    pub(crate) options: RuntimeOptions,
    pub(crate) registry: Registry,
    pub(crate) queues: Vec<QueueSpec>,
    /// Per-queue slots of this process.
    pub(crate) limits: HashMap<String, Arc<Semaphore>>,
    /// Bounds `step_blocking` work (a semaphore around `spawn_blocking`).
    pub(crate) blocking: Semaphore,
    /// Every workflow task of this process.
    pub(crate) tracker: TaskTracker,
    /// Runs executing in this process (a run never executes twice at once here).
    pub(crate) running: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Runtime {
    /// A builder with no workflows yet.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The registered workflows.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// This process's executor id.
    pub fn executor_id(&self) -> &str {
        &self.inner.options.executor_id
    }

    /// True if this process serves queue `name`.
    pub fn serves_queue(&self, name: &str) -> bool {
        self.inner.queues.iter().any(|q| q.name == name)
    }

    /// Registers the executor and queues, resumes this executor's PENDING runs, then
    /// starts the queue workers and the heartbeat/takeover loop on `tracker`.
    pub async fn launch(&self, tracker: &TaskTracker) -> Result<(), StoreError> {
        recovery::register(self).await?;
        worker::queue::register_queues(self).await?;
        recovery::resume_own(self).await?;
        tracker.spawn(recovery::heartbeat_loop(self.clone()));
        for q in &self.inner.queues {
            tracker.spawn(worker::queue::run(self.clone(), q.clone()));
        }
        Ok(())
    }
}

/// Builds and launches the runtime of `builder` with the settings of `config`; the error
/// says why it could not start.
pub async fn launch_from_config(
    builder: RuntimeBuilder,
    config: &crate::Config,
    store: &Store,
    hub: &Hub,
    notifier: &Notifier,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Runtime, String> {
    let mut builder = builder;
    let specs = config.runtime.queue_specs()?;
    for spec in specs {
        builder = builder.queue_spec(spec);
    }
    let mut options = config.runtime.options();
    // The drain timeout is the server's (FLOWGATE_DRAIN_TIMEOUT): a running step gets that
    // long after the queues stop taking work.
    options.drain_timeout = config.drain_period();
    let rt = builder.build(
        store.clone(),
        hub.clone(),
        notifier.clone(),
        shutdown.clone(),
        options,
    );
    rt.launch(tracker).await.map_err(|e| e.to_string())?;
    Ok(rt)
}
