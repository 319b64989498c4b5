//! Executors and recovery claims: each process's executor row and its heartbeat, and the
//! claims on PENDING runs (its own after a restart, those of executors that went silent).
//! Every claim counts an attempt; runs marked `external` are never claimed.

use serde_json::Value;

use super::Store;
use crate::error::StoreError;

/// A PENDING run of an executor: claimed for execution, or read as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRun {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Its input.
    pub input: Option<Value>,
    /// Times claimed (a claim counts itself).
    pub attempts: i32,
    /// Its queue, if it came from one.
    pub queue: Option<String>,
}

impl Store {
    /// Inserts (or refreshes) executor `id`, started and heart-beating now.
    pub async fn register_executor(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO flowgate.executors (id) VALUES ($1)
             ON CONFLICT (id) DO UPDATE SET started_at = now(), heartbeat_at = now()",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a heartbeat of executor `id` (inserting its row if it is gone).
    pub async fn heartbeat(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO flowgate.executors (id) VALUES ($1)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks executor `id` silent, so that others take over its runs at once.
    pub async fn silence_executor(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE flowgate.executors SET heartbeat_at = 'epoch' WHERE id = $1",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims again the PENDING runs of `workflows` that `executor` owns.
    pub async fn claim_own(
        &self,
        executor: &str,
        workflows: &[String],
    ) -> Result<Vec<PendingRun>, StoreError> {
        Ok(sqlx::query_as!(
            PendingRun,
            "UPDATE flowgate.workflows SET attempts = attempts + 1, updated_at = now()
             WHERE status = 'PENDING' AND NOT external AND executor_id = $1 AND workflow = ANY($2)
             RETURNING id, workflow, input, attempts, queue",
            executor,
            workflows
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The PENDING runs of `workflows` that `executor` owns.
    pub async fn own_pending(
        &self,
        executor: &str,
        workflows: &[String],
    ) -> Result<Vec<PendingRun>, StoreError> {
        Ok(sqlx::query_as!(
            PendingRun,
            "SELECT id, workflow, input, attempts, queue FROM flowgate.workflows
             WHERE status = 'PENDING' AND NOT external AND executor_id = $1 AND workflow = ANY($2)",
            executor,
            workflows
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims for `executor` up to 100 PENDING runs of `workflows`, oldest first, whose
    /// executor has not heart-beaten for `dead_ms` milliseconds.
    pub async fn claim_silent(
        &self,
        executor: &str,
        workflows: &[String],
        dead_ms: f64,
    ) -> Result<Vec<PendingRun>, StoreError> {
        Ok(sqlx::query_as!(
            PendingRun,
            "UPDATE flowgate.workflows SET executor_id = $1, attempts = attempts + 1, updated_at = now()
             WHERE id IN (
                 SELECT w.id FROM flowgate.workflows w
                 WHERE w.status = 'PENDING' AND NOT w.external AND w.workflow = ANY($2)
                   AND w.executor_id IS DISTINCT FROM $1
                   AND NOT EXISTS (SELECT 1 FROM flowgate.executors e
                                   WHERE e.id = w.executor_id
                                     AND e.heartbeat_at > now() - make_interval(secs => $3::float8 / 1000.0))
                 ORDER BY w.created_at LIMIT 100
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, workflow, input, attempts, queue",
            executor,
            workflows,
            dead_ms
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
