//! Step records as a run's timeline: the steps a workflow recorded, with their start, end
//! and error, for `/live` and the page. Operation records whose effect is visible on its
//! own (event writes, stream appends and closes, sends, wait deadlines) are left out.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Store;
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
