//! Step records: the run's timeline (the steps a workflow recorded, with their start, end
//! and error, for `/live` and the page; operation records whose effect is visible on its
//! own, such as event writes, stream appends and closes, sends and wait deadlines, are left
//! out), and the runtime's side: every record a replay reads back, the ownership read and
//! row lock that fence a recording transaction, and the insert of one record.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

use super::{RunStatus, Store};
use crate::error::StoreError;

/// Most steps read at once.
pub const STEP_PAGE: i64 = 500;

/// One step on a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StepRow {
    /// Step number (the order the workflow took its steps in).
    pub step: i32,
    /// Step name (`fib`, `recv:approval`, `child_result:<id>`, …).
    pub name: String,
    /// When the workflow took the step.
    pub started_at: Option<DateTime<Utc>>,
    /// When its outcome was recorded.
    pub finished_at: DateTime<Utc>,
    /// The error it failed with, if it did.
    pub error: Option<Value>,
}

impl Store {
    /// Timeline steps of `run` numbered above `after`, in order, at most [`STEP_PAGE`].
    pub async fn steps_after(&self, run: &str, after: i32) -> Result<Vec<StepRow>, StoreError> {
        Ok(sqlx::query_as!(
            StepRow,
            "SELECT step, name, started_at, finished_at, error FROM flowgate.steps
             WHERE workflow_id = $1 AND step > $2
               AND name !~ '^(set_event|write_stream|close_stream|send|recv_deadline):'
             ORDER BY step LIMIT $3",
            run,
            after,
            STEP_PAGE
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// One recorded step, as a replay reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Step number.
    pub step: i32,
    /// Step name.
    pub name: String,
    /// Output, if the step succeeded.
    pub output: Option<Value>,
    /// Error, if the step failed for good.
    pub error: Option<Value>,
}

/// A run's status and owning executor (`None` if the run does not exist).
pub type RunOwner = Option<(RunStatus, Option<String>)>;

impl Store {
    /// Every recorded step of `run`, in no particular order.
    pub async fn step_records(&self, run: &str) -> Result<Vec<StepRecord>, StoreError> {
        Ok(sqlx::query_as!(
            StepRecord,
            "SELECT step, name, output, error FROM flowgate.steps WHERE workflow_id = $1",
            run
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The run's status and owner, read without a lock.
    pub async fn run_owner(&self, run: &str) -> Result<RunOwner, StoreError> {
        let row = sqlx::query!(
            r#"SELECT status AS "status: RunStatus", executor_id FROM flowgate.workflows WHERE id = $1"#,
            run
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.status, r.executor_id)))
    }
}

/// The run's status and owner, locking its row (`FOR NO KEY UPDATE`) until `conn`'s
/// transaction ends.
pub async fn lock_run_owner(conn: &mut PgConnection, run: &str) -> Result<RunOwner, StoreError> {
    let row = sqlx::query!(
        r#"SELECT status AS "status: RunStatus", executor_id FROM flowgate.workflows
           WHERE id = $1 FOR NO KEY UPDATE"#,
        run
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.status, r.executor_id)))
}

/// Inserts step `step` of `run` (taken at `started`, but never later than now); a step
/// recorded before wins.
pub async fn record_step(
    conn: &mut PgConnection,
    run: &str,
    step: i32,
    name: &str,
    started: DateTime<Utc>,
    output: Option<&Value>,
    error: Option<&Value>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO flowgate.steps (workflow_id, step, name, output, error, started_at)
         VALUES ($1, $2, $3, $4, $5, least($6, now()))
         ON CONFLICT (workflow_id, step) DO NOTHING",
        run,
        step,
        name,
        output,
        error,
        started
    )
    .execute(conn)
    .await?;
    Ok(())
}
