//! One dequeue loop per served queue.
//!
//! The loop first takes a local slot (the per-process limit), then claims up to as many
//! ENQUEUED runs as it holds slots, within the queue's global limit, using
//! `FOR UPDATE SKIP LOCKED` under the queue row's lock, so several processes on one
//! database share the work and the global cap holds. When nothing is left it sleeps until a
//! queue note (an enqueue, or a slot freed anywhere) or the slow safety re-check — it never
//! polls.

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::OwnedSemaphorePermit;

use super::super::{QueueSpec, Runtime};
use crate::error::StoreError;

/// Records each served queue and its global limit (the last process to start wins).
pub async fn register_queues(rt: &Runtime) -> Result<(), StoreError> {
    for q in &rt.inner.queues {
        sqlx::query(
            "INSERT INTO flowgate.queues (name, global_limit) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET global_limit = excluded.global_limit,
                                              updated_at = now()",
        )
        .bind(&q.name)
        .bind(q.global_concurrency.map(|g| g as i32))
        .execute(&rt.inner.store.pool)
        .await?;
    }
    Ok(())
}

/// Claims up to `n` runs of `queue` for this executor.
async fn dequeue(
    rt: &Runtime,
    queue: &str,
    n: usize,
) -> Result<Vec<(String, String, Option<Value>)>, StoreError> {
    let mut tx = rt.inner.store.pool.begin().await?;
    let limit: Option<Option<i32>> =
        sqlx::query_scalar("SELECT global_limit FROM flowgate.queues WHERE name = $1 FOR UPDATE")
            .bind(queue)
            .fetch_optional(&mut *tx)
            .await?;
    let mut n = n as i64;
    if let Some(Some(global)) = limit {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM flowgate.workflows WHERE queue = $1 AND status = 'PENDING'",
        )
        .bind(queue)
        .fetch_one(&mut *tx)
        .await?;
        n = n.min(global as i64 - running);
    }
    if n <= 0 {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let claimed = sqlx::query_as(
        "UPDATE flowgate.workflows
         SET status = 'PENDING', executor_id = $2, attempts = attempts + 1, updated_at = now()
         WHERE id IN (SELECT id FROM flowgate.workflows
                      WHERE queue = $1 AND status = 'ENQUEUED' AND workflow = ANY($3)
                      ORDER BY created_at, id LIMIT $4
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, workflow, input",
    )
    .bind(queue)
    .bind(rt.executor_id())
    .bind(rt.registry().all_names())
    .bind(n)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Serves `spec` until shutdown.
pub async fn run(rt: Runtime, spec: QueueSpec) {
    let Some(slots) = rt.inner.limits.get(&spec.name).cloned() else {
        return;
    };
    let shutdown = rt.inner.shutdown.clone();
    let mut wake = rt.inner.hub.queue_wakeups();
    loop {
        // Hold at least one local slot before looking for work.
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let mut permits: Vec<OwnedSemaphorePermit> = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let held = permits.len();
        let claimed = match dequeue(&rt, &spec.name, held).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(queue = %spec.name, error = %e, "dequeue failed");
                Vec::new()
            }
        };
        let full = claimed.len() == held;
        for (id, workflow, input) in claimed {
            rt.publish_status(&id, None);
            let permit = permits.pop();
            rt.spawn_run(id, workflow, input.unwrap_or(Value::Null), permit);
        }
        drop(permits);
        if full {
            continue;
        }
        // Nothing more to take now: sleep until a note about this queue, or the re-check.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(rt.inner.options.queue_recheck) => break,
                w = wake.recv() => match w {
                    Ok(Some(q)) if q != spec.name => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}
