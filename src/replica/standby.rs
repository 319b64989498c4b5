//! One standby as the router sees it: its pool, its health and the primary positions it
//! is measured against.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::lock;
use crate::store::Store;

/// What the gateway knows of one standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Serving reads.
    Ok,
    /// Behind by more than the bound (or paused): skipped until it replays past `target`.
    Behind,
    /// Unreachable or failing.
    Down,
    /// No longer in recovery: it was promoted and may diverge from the primary.
    Promoted,
}

/// One standby's state.
#[derive(Debug, Clone, Serialize)]
pub struct StandbyState {
    /// Health.
    pub state: Health,
    /// Primary WAL position the standby must replay past before it serves again.
    #[serde(skip)]
    pub target: Option<i64>,
    /// Replay lag in bytes of WAL at the last probe.
    pub lag_bytes: i64,
    /// Replay lag in seconds as seen by this gateway at the last probe.
    pub lag_seconds: f64,
}

/// A standby: its pool and state.
pub struct Standby {
    /// Label in metrics and readiness (its position in `FLOWGATE_READ_URL`).
    pub label: String,
    /// Its pool.
    pub store: Store,
    pub(super) state: Mutex<StandbyState>,
    /// Primary WAL positions recently sampled, with when (for lag in seconds).
    pub(super) samples: Mutex<std::collections::VecDeque<(Instant, i64)>>,
}

impl Standby {
    /// A copy of its state.
    pub fn state(&self) -> StandbyState {
        lock(&self.state).clone()
    }

    /// Changes the state under its lock; says once when the standby is found promoted,
    /// whichever path (the probe or a read) finds it.
    pub(super) fn set(&self, f: impl FnOnce(&mut StandbyState)) {
        let mut s = lock(&self.state);
        let was = s.state;
        f(&mut s);
        if s.state == Health::Promoted && was != Health::Promoted {
            tracing::warn!(standby = %self.label, "read URL left recovery (promoted): not used");
        }
    }

    pub(super) fn mark(&self, h: Health) {
        self.set(|s| {
            if s.state != Health::Promoted || h == Health::Down {
                s.state = h;
                s.target = None;
            }
        });
    }
}
