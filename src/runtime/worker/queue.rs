//! One dequeue loop per served queue.
//!
//! The loop first takes a local slot (the per-process limit), then claims up to as many
//! ENQUEUED runs as it holds slots, within the queue's global limit, using
//! `FOR UPDATE SKIP LOCKED` under the queue row's lock, so several processes on one
//! database share the work and the global cap holds. When nothing is left it sleeps until a
//! queue note (an enqueue, or a slot freed anywhere) or the slow safety re-check — it never
//! polls. The statements are in [`crate::store::queues`].

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::OwnedSemaphorePermit;

use super::super::{QueueSpec, Runtime};
use crate::error::StoreError;
use crate::store::queues::DequeuedRun;

/// Records each served queue and its global limit (the last process to start wins).
pub async fn register_queues(rt: &Runtime) -> Result<(), StoreError> {
    for q in &rt.inner.queues {
        let global = q.global_concurrency.map(|g| g as i32);
        rt.inner.store.register_queue(&q.name, global).await?;
    }
    Ok(())
}

/// Claims up to `n` runs of `queue` for this executor.
async fn dequeue(rt: &Runtime, queue: &str, n: usize) -> Result<Vec<DequeuedRun>, StoreError> {
    let names = rt.registry().all_names();
    rt.inner
        .store
        .claim_queued(queue, rt.executor_id(), &names, n as i64)
        .await
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
        for DequeuedRun {
            id,
            workflow,
            input,
        } in claimed
        {
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
