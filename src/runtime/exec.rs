//! Executes one claimed run in this process: replay its recorded steps, run the workflow,
//! record the outcome. A run is executed at most once at a time per process; shutdown drops
//! the task and leaves the run PENDING for recovery.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use super::context::WorkflowContext;
use super::{steps, Runtime, WorkflowError};

/// Attempts of one execution after transient database errors before giving up on it (it
/// stays PENDING and the recovery loop picks it up again).
const DB_RETRIES: u32 = 3;

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
        self.inner.tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
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
        for attempt in 1..=DB_RETRIES {
            let recorded = match steps::load(&self.inner.store, id).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(run = id, error = %e, "cannot load steps");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let ctx = WorkflowContext::new(self.clone(), id, recorded);
            let outcome = ty.run(ctx, input.clone()).await;
            match outcome {
                Ok(out) => {
                    self.report(id, self.finish(id, Ok(out)).await);
                    return;
                }
                Err(WorkflowError::Cancelled) => {
                    tracing::info!(run = id, "cancelled");
                    return;
                }
                Err(WorkflowError::Superseded) => {
                    tracing::info!(run = id, "run is no longer ours; stopping");
                    return;
                }
                Err(WorkflowError::Store(e)) if attempt < DB_RETRIES => {
                    tracing::warn!(run = id, error = %e, attempt, "database error; replaying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::info!(run = id, error = %e, "workflow failed");
                    self.report(id, self.finish(id, Err(&e)).await);
                    return;
                }
            }
        }
    }

    fn report(&self, id: &str, r: Result<(), crate::error::StoreError>) {
        if let Err(e) = r {
            tracing::error!(run = id, error = %e, "cannot record the outcome; recovery will retry");
        }
    }
}
