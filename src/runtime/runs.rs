//! Run lifecycle in the database: start (direct or enqueued, idempotent by id), cancel,
//! finish, and listing (the statements are in [`crate::store::run_writes`] and
//! [`crate::store::runs`]). Every status change publishes a status note after it commits; a
//! change that frees or fills a queue slot also publishes a queue note.

use serde::Serialize;
use serde_json::{json, Value};

use super::registry::FieldError;
use super::{Runtime, WorkflowError};
use crate::error::StoreError;
use crate::ids::RunId;
use crate::note::{Note, NoteKind};
use crate::store::run_writes::NewRun;
use crate::store::RunStatus;
use crate::tags::Tags;

pub use crate::store::runs::{ListQuery, RunSummary};

/// What to start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Registered workflow name.
    pub workflow: String,
    /// Its input.
    pub input: Value,
    /// Run id (random if absent); reusing one with the same input is a no-op.
    pub id: Option<RunId>,
    /// Enqueue on this queue instead of running at once in this process.
    pub queue: Option<String>,
    /// Seconds the run is kept once finished (`None`: the server's retention; 0: forever).
    pub retention_secs: Option<i64>,
    /// Tags the run carries (lists and tag tokens select runs by them).
    pub tags: Tags,
}

/// What a start did.
#[derive(Debug, Clone, Serialize)]
pub struct StartOutcome {
    /// The run id.
    pub id: String,
    /// Its status now.
    pub status: RunStatus,
    /// False if the run already existed with the same input.
    pub created: bool,
}

/// Why a start was refused.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No workflow of that name is registered.
    #[error("unknown workflow {0}")]
    UnknownWorkflow(String),
    /// No queue of that name is served here.
    #[error("unknown queue {0}")]
    UnknownQueue(String),
    /// The input fails the workflow's schema.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The id exists with another workflow or input.
    #[error("run {0} exists with another workflow or input")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for StartError {
    fn from(e: sqlx::Error) -> Self {
        StartError::Store(e.into())
    }
}

impl Runtime {
    /// Validates and starts a run: at once in this process, or on a queue.
    pub async fn start(&self, req: StartRequest) -> Result<StartOutcome, StartError> {
        let ty = self
            .registry()
            .get(&req.workflow)
            .ok_or_else(|| StartError::UnknownWorkflow(req.workflow.clone()))?;
        if let Some(q) = &req.queue {
            if !self.serves_queue(q) {
                return Err(StartError::UnknownQueue(q.clone()));
            }
        }
        let errors = ty.validate(&req.input);
        if !errors.is_empty() {
            return Err(StartError::Invalid(errors));
        }
        let id = req.id.clone().unwrap_or_else(RunId::random);
        let (status, executor, attempts) = match &req.queue {
            Some(_) => (RunStatus::Enqueued, None, 0),
            None => (RunStatus::Pending, Some(self.executor_id()), 1),
        };
        let store = &self.inner.store;
        let inserted = store
            .insert_run(&NewRun {
                id: id.as_str(),
                workflow: &req.workflow,
                status,
                input: &req.input,
                queue: req.queue.as_deref(),
                executor,
                attempts,
                retention_secs: req.retention_secs,
                tags: req.tags.as_slice(),
            })
            .await?;
        if inserted.is_none() {
            let existing = store.run_identity(id.as_str()).await?;
            return match existing {
                Some(e)
                    if e.workflow == req.workflow
                        && e.input.as_ref() == Some(&req.input)
                        && e.tags == req.tags.as_slice() =>
                {
                    Ok(StartOutcome {
                        id: id.to_string(),
                        status: e.status,
                        created: false,
                    })
                }
                _ => Err(StartError::Conflict(id.to_string())),
            };
        }
        self.publish_status(id.as_str(), req.queue.as_deref());
        if req.queue.is_none() {
            self.spawn_run(
                id.to_string(),
                req.workflow.clone(),
                req.input.clone(),
                None,
            );
        }
        Ok(StartOutcome {
            id: id.to_string(),
            status,
            created: true,
        })
    }

    /// Publishes a status note for `run` (and a queue note for its queue, if any).
    pub(crate) fn publish_status(&self, run: &str, queue: Option<&str>) {
        let n = &self.inner.notifier;
        n.publish(Note::new(NoteKind::Status, run, "", 0));
        if let Some(q) = queue {
            n.publish(Note::new(NoteKind::Queue, "", q, 0));
        }
    }

    /// Cancels a run that has not finished; it stops before its next step. Returns the
    /// status afterwards, `None` if the run does not exist.
    pub async fn cancel(&self, id: &RunId) -> Result<Option<RunStatus>, StoreError> {
        let cancelled = self.inner.store.cancel_run(id.as_str()).await?;
        if let Some(queue) = cancelled {
            self.publish_status(id.as_str(), queue.as_deref());
            return Ok(Some(RunStatus::Cancelled));
        }
        Ok(self
            .inner
            .store
            .get_run(id.as_str())
            .await?
            .map(|r| r.status))
    }

    /// Records a run's final outcome, if this executor still owns it.
    pub(crate) async fn finish(
        &self,
        id: &str,
        outcome: Result<Value, &WorkflowError>,
    ) -> Result<(), StoreError> {
        self.finish_as(id, outcome, None).await
    }

    /// Records a run's final result with the outcome its workflow reported (kept only on
    /// success), if this executor still owns it.
    pub(crate) async fn finish_as(
        &self,
        id: &str,
        result: Result<Value, &WorkflowError>,
        reported: Option<String>,
    ) -> Result<(), StoreError> {
        let (status, output, error, outcome) = match result {
            Ok(v) => (RunStatus::Success, Some(v), None, reported),
            Err(e) => (
                RunStatus::Error,
                None,
                Some(json!({ "message": e.to_string() })),
                None,
            ),
        };
        let queue = self
            .inner
            .store
            .finish_owned_run(
                id,
                self.executor_id(),
                status,
                output.as_ref(),
                error.as_ref(),
                outcome.as_deref(),
            )
            .await?;
        if let Some(q) = queue {
            self.publish_status(id, q.as_deref());
        }
        Ok(())
    }
}

/// Lists runs newest first.
pub async fn list(
    store: &crate::store::Store,
    q: &ListQuery,
) -> Result<Vec<RunSummary>, StoreError> {
    store.list_runs(q).await
}
