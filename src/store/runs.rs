//! Run records: existence checks, status reads, and records for externally-run workflows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{RunStatus, Store};
use crate::error::StoreError;
use crate::ids::{RunId, WorkflowName};
use crate::tags::Tags;

/// A run's public state.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Where the run is in its life.
    pub status: RunStatus,
    /// Output, once finished.
    pub output: Option<Value>,
    /// Error, if it failed.
    pub error: Option<Value>,
    /// Tags given at start.
    pub tags: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last status change.
    pub updated_at: DateTime<Utc>,
    /// How a finished run ended (`succeeded`, `failed`, `cancelled`, or what the workflow
    /// reported, e.g. `rejected`); `None` until it finishes.
    pub outcome: Option<String>,
    /// When it began running (`None` while enqueued).
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The run that started this one, for children.
    pub parent_id: Option<String>,
}

/// Longest outcome name.
pub const MAX_OUTCOME_LEN: usize = 64;

/// Checks an outcome name: 1 to [`MAX_OUTCOME_LEN`] of `a-z`, `0-9` and `_`, starting with a
/// letter (the database enforces the same).
pub fn check_outcome(outcome: &str) -> Result<(), String> {
    let ok = outcome.len() <= MAX_OUTCOME_LEN
        && outcome.starts_with(|c: char| c.is_ascii_lowercase())
        && outcome
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_OUTCOME_LEN} of a-z, 0-9 and _, starting with a letter"
        ))
    }
}

impl Store {
    /// True if the run exists.
    pub async fn run_exists(&self, id: &RunId) -> Result<bool, StoreError> {
        self.run_exists_str(id.as_str()).await
    }

    /// True if a run of this id (unchecked) exists.
    pub async fn run_exists_str(&self, id: &str) -> Result<bool, StoreError> {
        let found = sqlx::query_scalar!(
            r#"SELECT 1 AS "one!" FROM flowgate.workflows WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Fails with [`StoreError::RunNotFound`] unless the run exists.
    pub async fn require_run(&self, id: &RunId) -> Result<(), StoreError> {
        if self.run_exists(id).await? {
            Ok(())
        } else {
            Err(StoreError::RunNotFound)
        }
    }

    /// The run's tags (`None` if it does not exist).
    pub async fn run_tags(&self, id: &str) -> Result<Option<Vec<String>>, StoreError> {
        Ok(
            sqlx::query_scalar!("SELECT tags FROM flowgate.workflows WHERE id = $1", id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The run's public state.
    pub async fn get_run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        Ok(sqlx::query_as!(
            RunRow,
            r#"SELECT id, workflow, status AS "status: RunStatus", output, error, tags,
                    created_at, updated_at, outcome, started_at, finished_at, parent_id
             FROM flowgate.workflows WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Creates the record of an externally-run workflow (kept `retention_secs` after it
    /// finishes, or the server's default); true if created, false if it already existed with
    /// the same workflow name, conflict otherwise.
    pub async fn ensure_run(
        &self,
        id: &RunId,
        workflow: &WorkflowName,
        tags: &Tags,
        retention_secs: Option<i64>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT flowgate.ensure_run($1, $2, $3, $4) AS "created!""#,
            id.as_str(),
            workflow.as_str(),
            tags.as_slice(),
            retention_secs
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Marks an external run finished without notifying; returns its status. Conflict for
    /// a run of the workflow runtime or one finished with another status or outcome.
    pub async fn finish_run(
        &self,
        id: &RunId,
        status: RunStatus,
        output: Option<&Value>,
        error: Option<&Value>,
        outcome: Option<&str>,
    ) -> Result<RunStatus, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT flowgate.finish_run_quiet($1, $2, $3, $4, $5) AS "status!: RunStatus""#,
            id.as_str(),
            status as RunStatus,
            output,
            error,
            outcome
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// One row of `GET /v1/workflows`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Status.
    pub status: RunStatus,
    /// How it ended, once finished (see [`RunRow::outcome`]).
    pub outcome: Option<String>,
    /// Queue, if enqueued.
    pub queue: Option<String>,
    /// Parent run, for children.
    pub parent_id: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Times it was started.
    pub attempts: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Filters and page of `GET /v1/workflows`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only runs carrying this tag.
    pub tag: Option<String>,
    /// Only runs carrying at least one of these tags (a tag-scoped token's reach).
    pub any_tag: Option<Vec<String>>,
    /// Page size.
    pub limit: i64,
    /// Continue after this (created_at, id), newest first.
    pub after: Option<(DateTime<Utc>, String)>,
}

impl Store {
    /// Lists runs newest first.
    pub async fn list_runs(&self, q: &ListQuery) -> Result<Vec<RunSummary>, StoreError> {
        let (ts, id) = match &q.after {
            Some((ts, id)) => (Some(*ts), Some(id.as_str())),
            None => (None, None),
        };
        Ok(sqlx::query_as!(
            RunSummary,
            r#"SELECT id, workflow, status AS "status: RunStatus", outcome, queue, parent_id, tags,
                      attempts, created_at, updated_at
             FROM flowgate.workflows
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR workflow = $2)
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
               AND ($6::text IS NULL OR tags @> ARRAY[$6])
               AND ($7::text[] IS NULL OR tags && $7)
             ORDER BY created_at DESC, id DESC LIMIT $5"#,
            q.status as Option<RunStatus>,
            q.workflow.as_deref(),
            ts,
            id,
            q.limit,
            q.tag.as_deref(),
            q.any_tag.as_deref()
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
