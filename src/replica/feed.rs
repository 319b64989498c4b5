//! The live run list's reads through the router.
//!
//! A run-list position is a snapshot, and a snapshot taken on a hot standby cannot serve as
//! one: `pg_current_snapshot()` there lists no transaction as in progress (the standby
//! keeps them elsewhere), so it would claim to have seen changes that have not committed.
//! These reads therefore take their end position from the primary's fence (its snapshot,
//! with a WAL position past every commit that snapshot sees), wait for the standby to
//! replay past it, and read there the changes visible in that snapshot, no further. The
//! fence is one query without table access, shared by every read waiting at that moment.

use super::Replicas;
use crate::error::StoreError;
use crate::store::run_changes::{RunChange, Snapshot};
use crate::store::runs::{ListQuery, RunSummary};

impl Replicas {
    /// Runs changed after `since` up to a primary fence point, and that point.
    pub async fn run_changes(
        &self,
        since: &Snapshot,
        f: &ListQuery,
    ) -> Result<(Vec<RunChange>, Snapshot), StoreError> {
        self.read_at_fence(
            |s, upto| async move { s.run_changes_upto(since, upto.as_deref(), f).await },
        )
        .await
    }

    /// The newest runs matching `f` as of a primary fence point, and that point.
    pub async fn runs_now(&self, f: &ListQuery) -> Result<(Vec<RunSummary>, Snapshot), StoreError> {
        self.read_at_fence(|s, upto| async move { s.runs_now_at(f, upto.as_deref()).await })
            .await
    }
}
