//! Status of watched DBOS runs. DBOS notifies nothing when a workflow's status changes, so
//! while anyone watches a run this re-reads the status of every watched run in one query per
//! period; when no one watches, it reads nothing. A change wakes the run's topics: the run
//! topic re-reads its status, and its streams see the run finished (and end once drained).

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::every::Every;
use crate::hub::Hub;
use crate::store::dbos::DbosStore;

/// Runs until `cancel` fires.
pub async fn watch_status(hub: Hub, store: DbosStore, every: Duration, cancel: CancellationToken) {
    let mut seen: HashMap<String, (String, i64)> = HashMap::new();
    let mut every = Every::now(every, cancel);
    while every.tick().await {
        let runs = hub.watched_runs();
        if runs.is_empty() {
            seen.clear();
            continue;
        }
        let rows = match store.statuses(&runs).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "DBOS status re-read failed");
                continue;
            }
        };
        for (run, status, updated) in rows {
            let now = (status, updated);
            // First sight also wakes: the change may have landed between a subscriber's own
            // read and this one.
            if seen.get(&run) != Some(&now) {
                hub.wake_run(&run);
                seen.insert(run, now);
            }
        }
        seen.retain(|r, _| runs.binary_search(r).is_ok());
    }
}
