//! Executes one claimed run in this process: replay its recorded steps, run the workflow,
//! record the outcome. A run is executed at most once at a time per process. On shutdown a
//! workflow finishes the step it is in (up to the drain timeout) and stops before the next
//! one, leaving the run PENDING for recovery. A transient database error also leaves
//! it PENDING: the heartbeat re-launches this executor's PENDING runs that are not running.

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use super::context::WorkflowContext;
use super::{steps, Runtime, WorkflowError};
use crate::error::StoreError;

impl Runtime {
    /// Runs `id` in the background (it must already be claimed by this executor).
    pub(crate) fn spawn_run(
        &self,
        id: String,
        workflow: String,
        input: Value,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        {
            let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
            if !running.insert(id.clone()) {
                return;
            }
        }
        let rt = self.clone();
        let shutdown = self.inner.shutdown.clone();
        let drain = self.inner.options.drain_timeout;
        self.inner.tracker.spawn(async move {
            // On shutdown the workflow stops before its next step (waits end at once); a
            // step still running after the drain timeout is abandoned.
            tokio::select! {
                _ = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
                    tracing::warn!(run = %id, "drain timeout; abandoning the running step");
                }
                _ = rt.execute(&id, &workflow, input) => {}
            }
            rt.inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            drop(permit);
        });
    }

    async fn execute(&self, id: &str, workflow: &str, input: Value) {
        let Some(ty) = self.registry().get(workflow) else {
            let e = WorkflowError::failed(format!("workflow {workflow} is not registered"));
            self.report(id, self.finish(id, Err(&e)).await);
            return;
        };
        // Still ours? (A re-launch may race with the end of an earlier execution.)
        if steps::check_owned(&self.inner.store, id, self.executor_id())
            .await
            .is_err()
        {
            return;
        }
        let recorded = match steps::load(&self.inner.store, id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(run = id, error = %e, "cannot load steps; the heartbeat retries");
                return;
            }
        };
        let ctx = WorkflowContext::new(self.clone(), id, recorded);
        match ty.run(ctx.clone(), input).await {
            Ok(out) => {
                let outcome = ctx.outcome();
                self.report(id, self.finish_as(id, Ok(out), outcome).await)
            }
            Err(WorkflowError::Cancelled) => tracing::info!(run = id, "cancelled"),
            Err(WorkflowError::Superseded) => {
                tracing::info!(run = id, "run is no longer ours; stopping")
            }
            Err(WorkflowError::Store(StoreError::Db(e))) => {
                // Transient: the run stays PENDING and ours; the heartbeat replays it.
                tracing::warn!(run = id, error = %e, "database error; will replay");
            }
            Err(e) => {
                tracing::info!(run = id, error = %e, "workflow failed");
                self.report(id, self.finish(id, Err(&e)).await);
            }
        }
    }

    /// True if run `id` is executing in this process.
    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    fn report(&self, id: &str, r: Result<(), crate::error::StoreError>) {
        if let Err(e) = r {
            tracing::error!(run = id, error = %e, "cannot record the outcome; recovery will retry");
        }
    }
}
