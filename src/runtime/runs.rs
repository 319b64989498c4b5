//! Run lifecycle in the database: start (direct or enqueued, idempotent by id), cancel,
//! finish, and listing. Every status change publishes a status note after it commits; a
//! change that frees or fills a queue slot also publishes a queue note.

use serde::Serialize;
use serde_json::{json, Value};

use super::registry::FieldError;
use super::{Runtime, WorkflowError};
use crate::error::StoreError;
use crate::ids::RunId;
use crate::note::{Note, NoteKind};
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
        let inserted: Option<RunStatus> = sqlx::query_scalar(
            "INSERT INTO flowgate.workflows
                 (id, workflow, status, input, queue, executor_id, attempts, retention_secs, tags)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING RETURNING status",
        )
        .bind(id.as_str())
        .bind(&req.workflow)
        .bind(status)
        .bind(&req.input)
        .bind(&req.queue)
        .bind(executor)
        .bind(attempts)
        .bind(req.retention_secs)
        .bind(req.tags.as_slice())
        .fetch_optional(&self.inner.store.pool)
        .await?;
        if inserted.is_none() {
            type Existing = (String, Option<Value>, RunStatus, Vec<String>);
            let existing: Option<Existing> = sqlx::query_as(
                "SELECT workflow, input, status, tags FROM flowgate.workflows WHERE id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(&self.inner.store.pool)
            .await?;
            return match existing {
                Some((wf, input, status, tags))
                    if wf == req.workflow
                        && input.as_ref() == Some(&req.input)
                        && tags == req.tags.as_slice() =>
                {
                    Ok(StartOutcome {
                        id: id.to_string(),
                        status,
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
        let cancelled: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE flowgate.workflows SET status = 'CANCELLED', updated_at = now()
             WHERE id = $1 AND status IN ('ENQUEUED', 'PENDING') AND NOT external
             RETURNING queue",
        )
        .bind(id.as_str())
        .fetch_optional(&self.inner.store.pool)
        .await?;
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
        let queue: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE flowgate.workflows
             SET status = $2, output = $3, error = $4, outcome = $6, updated_at = now()
             WHERE id = $1 AND status = 'PENDING' AND executor_id = $5
             RETURNING queue",
        )
        .bind(id)
        .bind(status)
        .bind(output)
        .bind(error)
        .bind(self.executor_id())
        .bind(outcome)
        .fetch_optional(&self.inner.store.pool)
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
    let (ts, id) = match &q.after {
        Some((ts, id)) => (Some(*ts), Some(id.clone())),
        None => (None, None),
    };
    Ok(sqlx::query_as(
        "SELECT id, workflow, status, outcome, queue, parent_id, tags, attempts, created_at, updated_at
         FROM flowgate.workflows
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR workflow = $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
           AND ($6::text IS NULL OR tags @> ARRAY[$6])
           AND ($7::text[] IS NULL OR tags && $7)
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(q.status)
    .bind(&q.workflow)
    .bind(ts)
    .bind(id)
    .bind(q.limit)
    .bind(&q.tag)
    .bind(&q.any_tag)
    .fetch_all(&store.pool)
    .await?)
}
