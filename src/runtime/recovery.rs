//! Recovery: the executor row and its heartbeat, resuming this executor's own PENDING runs
//! at start, and taking over the PENDING runs of executors that stopped heart-beating.
//!
//! Each claim increments the run's `attempts`; a run claimed more than `max_attempts`
//! times is marked ERROR instead of being run again (it keeps crashing its executor).
//! Runs created with `external = true` belong to other programs and are never touched.
//! The statements are in [`crate::store::executors`].

use serde_json::Value;

use super::{Runtime, WorkflowError};
use crate::error::StoreError;
use crate::every::Every;
use crate::store::executors::PendingRun;
use crate::store::Store;

/// Inserts (or refreshes) this process's executor row.
pub async fn register(rt: &Runtime) -> Result<(), StoreError> {
    rt.inner.store.register_executor(rt.executor_id()).await
}

/// The store, this executor's id, and the workflows it runs: what every claim names.
fn mine(rt: &Runtime) -> (&Store, &str, Vec<String>) {
    (&rt.inner.store, rt.executor_id(), rt.registry().all_names())
}

/// Resumes the PENDING runs this executor owned before a restart.
pub async fn resume_own(rt: &Runtime) -> Result<(), StoreError> {
    let (store, me, names) = mine(rt);
    let claimed = store.claim_own(me, &names).await?;
    if !claimed.is_empty() {
        tracing::info!(runs = claimed.len(), "resuming own runs");
    }
    launch_claimed(rt, claimed).await;
    Ok(())
}

/// Re-launches this executor's PENDING runs that are not executing here (their execution
/// stopped on a transient database error, or recording the outcome failed).
pub async fn relaunch_stalled(rt: &Runtime) -> Result<(), StoreError> {
    let (store, me, names) = mine(rt);
    let own = store.own_pending(me, &names).await?;
    for run in own {
        if rt.is_running(&run.id) {
            continue;
        }
        tracing::info!(run = %run.id, "re-launching a stalled run");
        launch(rt, run);
    }
    Ok(())
}

/// Claims PENDING runs whose executor is silent for longer than `dead_after`.
pub async fn take_over(rt: &Runtime) -> Result<usize, StoreError> {
    let dead_ms = rt.inner.options.dead_after.as_millis() as i64;
    let (store, me, names) = mine(rt);
    let claimed = store.claim_silent(me, &names, dead_ms as f64).await?;
    let n = claimed.len();
    if n > 0 {
        tracing::info!(runs = n, "took over runs of silent executors");
    }
    launch_claimed(rt, claimed).await;
    Ok(n)
}

async fn launch_claimed(rt: &Runtime, claimed: Vec<PendingRun>) {
    for run in claimed {
        let (id, attempts) = (&run.id, run.attempts);
        if attempts > rt.inner.options.max_attempts {
            let e = WorkflowError::failed(format!(
                "gave up after {} attempts",
                rt.inner.options.max_attempts
            ));
            tracing::warn!(run = %id, attempts, "too many attempts; marking ERROR");
            if let Err(err) = rt.finish(id, Err(&e)).await {
                tracing::error!(run = %id, error = %err, "cannot mark run failed");
            }
            continue;
        }
        launch(rt, run);
    }
}

/// Runs `run` here, holding a slot of its queue's concurrency limit if one is free now.
fn launch(rt: &Runtime, run: PendingRun) {
    let permit = run
        .queue
        .as_ref()
        .and_then(|q| rt.inner.limits.get(q))
        .and_then(|s| s.clone().try_acquire_owned().ok());
    rt.spawn_run(
        run.id,
        run.workflow,
        run.input.unwrap_or(Value::Null),
        permit,
    );
}

/// Heart-beats and takes over silent executors' runs every `heartbeat` until shutdown;
/// then marks this executor silent so that others take over at once.
pub async fn heartbeat_loop(rt: Runtime) {
    let store = rt.inner.store.clone();
    let mut every = Every::now(rt.inner.options.heartbeat, rt.inner.shutdown.clone());
    while every.tick().await {
        if let Err(e) = store.heartbeat(rt.executor_id()).await {
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
    let _ = store.silence_executor(rt.executor_id()).await;
}
