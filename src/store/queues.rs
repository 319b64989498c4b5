//! Queues: each served queue's row with its global limit, and the claim of ENQUEUED runs.
//!
//! A claim locks the queue row first, so that the count of the queue's PENDING runs and the
//! runs it then takes (`FOR UPDATE SKIP LOCKED`) cannot overrun the global limit when
//! several processes claim at once.

use serde_json::Value;

use super::Store;
use crate::error::StoreError;

/// A run taken off a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DequeuedRun {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Its input.
    pub input: Option<Value>,
}

impl Store {
    /// Records queue `name` and its global limit (`None`: no cap), replacing a limit set
    /// before.
    pub async fn register_queue(&self, name: &str, global: Option<i32>) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO flowgate.queues (name, global_limit) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET global_limit = excluded.global_limit,
                                              updated_at = now()",
            name,
            global
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims for `executor` up to `n` ENQUEUED runs of `workflows` on `queue`, oldest
    /// first, within the queue's global limit; they become PENDING.
    pub async fn claim_queued(
        &self,
        queue: &str,
        executor: &str,
        workflows: &[String],
        n: i64,
    ) -> Result<Vec<DequeuedRun>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let limit = sqlx::query_scalar!(
            "SELECT global_limit FROM flowgate.queues WHERE name = $1 FOR UPDATE",
            queue
        )
        .fetch_optional(&mut *tx)
        .await?;
        let mut n = n;
        if let Some(Some(global)) = limit {
            let running = sqlx::query_scalar!(
                r#"SELECT count(*) AS "running!" FROM flowgate.workflows
                   WHERE queue = $1 AND status = 'PENDING'"#,
                queue
            )
            .fetch_one(&mut *tx)
            .await?;
            n = n.min(global as i64 - running);
        }
        if n <= 0 {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let claimed = sqlx::query_as!(
            DequeuedRun,
            "UPDATE flowgate.workflows
             SET status = 'PENDING', executor_id = $2, attempts = attempts + 1, updated_at = now()
             WHERE id IN (SELECT id FROM flowgate.workflows
                          WHERE queue = $1 AND status = 'ENQUEUED' AND workflow = ANY($3)
                          ORDER BY created_at, id LIMIT $4
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, workflow, input",
            queue,
            executor,
            workflows,
            n
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed)
    }
}
