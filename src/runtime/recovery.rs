//! Recovery: the executor row and its heartbeat, resuming this executor's own PENDING runs
//! at start, and taking over the PENDING runs of executors that stopped heart-beating.
//!
//! Each claim increments the run's `attempts`; a run claimed more than `max_attempts`
//! times is marked ERROR instead of being run again (it keeps crashing its executor).
//! Runs created with `external = true` belong to other programs and are never touched.

use serde_json::Value;

use super::{Runtime, WorkflowError};
use crate::error::StoreError;

type Claimed = (String, String, Option<Value>, i32, Option<String>);

/// Inserts (or refreshes) this process's executor row.
pub async fn register(rt: &Runtime) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO flowgate.executors (id) VALUES ($1)
         ON CONFLICT (id) DO UPDATE SET started_at = now(), heartbeat_at = now()",
    )
    .bind(rt.executor_id())
    .execute(&rt.inner.store.pool)
    .await?;
    Ok(())
}

fn names(rt: &Runtime) -> Vec<String> {
    rt.registry().all_names()
}

/// Resumes the PENDING runs this executor owned before a restart.
pub async fn resume_own(rt: &Runtime) -> Result<(), StoreError> {
    let claimed: Vec<Claimed> = sqlx::query_as(
        "UPDATE flowgate.workflows SET attempts = attempts + 1, updated_at = now()
         WHERE status = 'PENDING' AND NOT external AND executor_id = $1 AND workflow = ANY($2)
         RETURNING id, workflow, input, attempts, queue",
    )
    .bind(rt.executor_id())
    .bind(names(rt))
    .fetch_all(&rt.inner.store.pool)
    .await?;
    if !claimed.is_empty() {
        tracing::info!(runs = claimed.len(), "resuming own runs");
    }
    launch_claimed(rt, claimed).await;
    Ok(())
}

/// Re-launches this executor's PENDING runs that are not executing here (their execution
/// stopped on a transient database error, or recording the outcome failed).
pub async fn relaunch_stalled(rt: &Runtime) -> Result<(), StoreError> {
    let own: Vec<(String, String, Option<Value>, Option<String>)> = sqlx::query_as(
        "SELECT id, workflow, input, queue FROM flowgate.workflows
         WHERE status = 'PENDING' AND NOT external AND executor_id = $1 AND workflow = ANY($2)",
    )
    .bind(rt.executor_id())
    .bind(names(rt))
    .fetch_all(&rt.inner.store.pool)
    .await?;
    for (id, workflow, input, queue) in own {
        if rt.is_running(&id) {
            continue;
        }
        tracing::info!(run = %id, "re-launching a stalled run");
        let permit = queue
            .as_ref()
            .and_then(|q| rt.inner.limits.get(q))
            .and_then(|s| s.clone().try_acquire_owned().ok());
        rt.spawn_run(id, workflow, input.unwrap_or(Value::Null), permit);
    }
    Ok(())
}

/// Claims PENDING runs whose executor is silent for longer than `dead_after`.
pub async fn take_over(rt: &Runtime) -> Result<usize, StoreError> {
    let dead_ms = rt.inner.options.dead_after.as_millis() as i64;
    let claimed: Vec<Claimed> = sqlx::query_as(
        "UPDATE flowgate.workflows SET executor_id = $1, attempts = attempts + 1, updated_at = now()
         WHERE id IN (
             SELECT w.id FROM flowgate.workflows w
             WHERE w.status = 'PENDING' AND NOT w.external AND w.workflow = ANY($2)
               AND w.executor_id IS DISTINCT FROM $1
               AND NOT EXISTS (SELECT 1 FROM flowgate.executors e
                               WHERE e.id = w.executor_id
                                 AND e.heartbeat_at > now() - make_interval(secs => $3 / 1000.0))
             ORDER BY w.created_at LIMIT 100
             FOR UPDATE SKIP LOCKED)
         RETURNING id, workflow, input, attempts, queue",
    )
    .bind(rt.executor_id())
    .bind(names(rt))
    .bind(dead_ms as f64)
    .fetch_all(&rt.inner.store.pool)
    .await?;
    let n = claimed.len();
    if n > 0 {
        tracing::info!(runs = n, "took over runs of silent executors");
    }
    launch_claimed(rt, claimed).await;
    Ok(n)
}

async fn launch_claimed(rt: &Runtime, claimed: Vec<Claimed>) {
    for (id, workflow, input, attempts, queue) in claimed {
        if attempts > rt.inner.options.max_attempts {
            let e = WorkflowError::failed(format!(
                "gave up after {} attempts",
                rt.inner.options.max_attempts
            ));
            tracing::warn!(run = %id, attempts, "too many attempts; marking ERROR");
            if let Err(err) = rt.finish(&id, Err(&e)).await {
                tracing::error!(run = %id, error = %err, "cannot mark run failed");
            }
            continue;
        }
        let permit = queue
            .as_ref()
            .and_then(|q| rt.inner.limits.get(q))
            .and_then(|s| s.clone().try_acquire_owned().ok());
        rt.spawn_run(id, workflow, input.unwrap_or(Value::Null), permit);
    }
}

/// Heart-beats and takes over silent executors' runs every `heartbeat` until shutdown;
/// then marks this executor silent so that others take over at once.
pub async fn heartbeat_loop(rt: Runtime) {
    let pool = rt.inner.store.pool.clone();
    let mut tick = tokio::time::interval(rt.inner.options.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rt.inner.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let beat = sqlx::query(
            "INSERT INTO flowgate.executors (id) VALUES ($1)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
        )
        .bind(rt.executor_id())
        .execute(&pool)
        .await;
        if let Err(e) = beat {
            tracing::warn!(error = %e, "heartbeat failed");
            continue;
        }
        if let Err(e) = take_over(&rt).await {
            tracing::warn!(error = %e, "takeover check failed");
        }
        if let Err(e) = relaunch_stalled(&rt).await {
            tracing::warn!(error = %e, "stalled-run check failed");
        }
    }
    // Wait for our workflow tasks to stop before others may claim their runs.
    rt.inner.tracker.close();
    rt.inner.tracker.wait().await;
    let _ = sqlx::query("UPDATE flowgate.executors SET heartbeat_at = 'epoch' WHERE id = $1")
        .bind(rt.executor_id())
        .execute(&pool)
        .await;
}
