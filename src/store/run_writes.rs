//! The workflow runtime's writes to run rows: a start (idempotent by id, with the stored
//! identity a repeated start is compared against), a cancel, the owning executor's finish,
//! and a child's start inside its parent's recording transaction.

use serde_json::Value;
use sqlx::PgConnection;

use super::{RunStatus, Store};
use crate::error::StoreError;

/// A run to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// Run id.
    pub id: &'a str,
    /// Workflow name.
    pub workflow: &'a str,
    /// ENQUEUED (on `queue`) or PENDING (on `executor`).
    pub status: RunStatus,
    /// Its input.
    pub input: &'a Value,
    /// Queue, if enqueued.
    pub queue: Option<&'a str>,
    /// Executing process, if started at once.
    pub executor: Option<&'a str>,
    /// Times started so far.
    pub attempts: i32,
    /// Seconds kept once finished (`None`: the server's retention).
    pub retention_secs: Option<i64>,
    /// Tags.
    pub tags: &'a [String],
}

/// What a repeated start is compared against.
#[derive(Debug, Clone, PartialEq)]
pub struct RunIdentity {
    /// Workflow name.
    pub workflow: String,
    /// Its input.
    pub input: Option<Value>,
    /// Status now.
    pub status: RunStatus,
    /// Tags.
    pub tags: Vec<String>,
}

/// A child run to insert (its retention and the parent's tags come from the parent's row).
#[derive(Debug, Clone, Copy)]
pub struct NewChild<'a> {
    /// Child run id.
    pub id: &'a str,
    /// Workflow name.
    pub workflow: &'a str,
    /// Its input.
    pub input: &'a Value,
    /// Queue it is enqueued on.
    pub queue: &'a str,
    /// Parent run id.
    pub parent: &'a str,
    /// The child's own tags (put before the parent's; ten at most in all).
    pub tags: &'a [String],
}

impl Store {
    /// Inserts `run` unless its id exists; its status if inserted.
    pub async fn insert_run(&self, run: &NewRun<'_>) -> Result<Option<RunStatus>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"INSERT INTO flowgate.workflows
                 (id, workflow, status, input, queue, executor_id, attempts, retention_secs, tags)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING
             RETURNING status AS "status: RunStatus""#,
            run.id,
            run.workflow,
            run.status as RunStatus,
            run.input,
            run.queue,
            run.executor,
            run.attempts,
            run.retention_secs,
            run.tags
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The run's workflow, input, status and tags.
    pub async fn run_identity(&self, id: &str) -> Result<Option<RunIdentity>, StoreError> {
        Ok(sqlx::query_as!(
            RunIdentity,
            r#"SELECT workflow, input, status AS "status: RunStatus", tags
             FROM flowgate.workflows WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Cancels the run if it is ENQUEUED or PENDING and not external; its queue if it did.
    pub async fn cancel_run(&self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        Ok(sqlx::query_scalar!(
            "UPDATE flowgate.workflows SET status = 'CANCELLED', updated_at = now()
             WHERE id = $1 AND status IN ('ENQUEUED', 'PENDING') AND NOT external
             RETURNING queue",
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records a run's end if it is PENDING and owned by `executor`; its queue if it did.
    pub async fn finish_owned_run(
        &self,
        id: &str,
        executor: &str,
        status: RunStatus,
        output: Option<&Value>,
        error: Option<&Value>,
        outcome: Option<&str>,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(sqlx::query_scalar!(
            "UPDATE flowgate.workflows
             SET status = $2, output = $3, error = $4, outcome = $6, updated_at = now()
             WHERE id = $1 AND status = 'PENDING' AND executor_id = $5
             RETURNING queue",
            id,
            status as RunStatus,
            output,
            error,
            executor,
            outcome
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// Enqueues `child` inside the parent's transaction unless its id exists.
pub async fn insert_child(conn: &mut PgConnection, child: &NewChild<'_>) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO flowgate.workflows
             (id, workflow, status, input, queue, parent_id, retention_secs, tags)
         SELECT $1, $2, 'ENQUEUED', $3, $4, $5, p.retention_secs, ARRAY(
             SELECT t FROM unnest($6::text[] || p.tags) WITH ORDINALITY AS u(t, i)
             GROUP BY t ORDER BY min(i) LIMIT 10)
         FROM flowgate.workflows p WHERE p.id = $5
         ON CONFLICT (id) DO NOTHING",
        child.id,
        child.workflow,
        child.input,
        child.queue,
        child.parent,
        child.tags
    )
    .execute(conn)
    .await?;
    Ok(())
}
