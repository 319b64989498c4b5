//! Run records: existence checks, status reads, and records for externally-run workflows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Store;
use crate::error::StoreError;
use crate::ids::{RunId, WorkflowName};

/// A run's public state.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// ENQUEUED, PENDING, SUCCESS, ERROR or CANCELLED.
    pub status: String,
    /// Output, once finished.
    pub output: Option<Value>,
    /// Error, if it failed.
    pub error: Option<Value>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last status change.
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// True if the run exists.
    pub async fn run_exists(&self, id: &RunId) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM flowgate.workflows WHERE id = $1")
                .bind(id.as_str())
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

    /// The run's public state.
    pub async fn get_run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, workflow, status, output, error, created_at, updated_at
             FROM flowgate.workflows WHERE id = $1",
        )
        .bind(id)
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
        retention_secs: Option<i64>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar("SELECT flowgate.ensure_run($1, $2, $3)")
            .bind(id.as_str())
            .bind(workflow.as_str())
            .bind(retention_secs)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Marks an external run finished without notifying; returns its status. Conflict for
    /// a run of the workflow runtime or one finished with another status.
    pub async fn finish_run(
        &self,
        id: &RunId,
        status: &str,
        output: Option<&Value>,
        error: Option<&Value>,
    ) -> Result<String, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT flowgate.finish_run_quiet($1, $2, $3, $4)")
                .bind(id.as_str())
                .bind(status)
                .bind(output)
                .bind(error)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
