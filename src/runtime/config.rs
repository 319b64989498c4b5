//! The runtime options and queue specs that `flowgate serve`'s runtime flags describe.

use std::time::Duration;

use super::{QueueSpec, RuntimeOptions};
pub use crate::config::runtime::RuntimeConfig;

fn secs(s: f64, min: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() { s.max(min) } else { min })
}

impl RuntimeConfig {
    /// The runtime options these flags describe.
    pub fn options(&self) -> RuntimeOptions {
        let mut o = RuntimeOptions::default();
        if let Some(id) = &self.executor_id {
            o.executor_id = id.clone();
        }
        o.heartbeat = secs(self.executor_heartbeat, 0.1);
        o.dead_after = secs(self.executor_dead_after, 0.2);
        o.max_attempts = self.max_attempts.max(1);
        o.queue_recheck = secs(self.queue_recheck, 1.0);
        if let Some(n) = self.blocking_threads {
            o.blocking_threads = n.max(1);
        }
        o
    }

    /// The queue specs; an invalid one is an error naming it.
    pub fn queue_specs(&self) -> Result<Vec<QueueSpec>, String> {
        self.queues
            .iter()
            .filter(|q| !q.trim().is_empty())
            .map(|q| QueueSpec::parse(q.trim()).map_err(|e| format!("--queue {q}: {e}")))
            .collect()
    }
}
