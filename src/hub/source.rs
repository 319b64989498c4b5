//! Where a hub's rows live: flowgate's own tables, or a DBOS system database.
//!
//! The hub's topics, fetchers and followers are the same for every source; only these reads
//! differ. Each read is one statement (one snapshot), as the followers require.

use crate::error::StoreError;
use crate::replica::reads::flowgate_page;
use crate::replica::{Replicas, Want};
use crate::store::dbos::DbosStore;
use crate::store::{EventRow, PageAt, RunRow, StepRow, Store, StreamInfo, StreamPage};

/// The tables a hub reads.
#[derive(Clone, Debug)]
pub enum Source {
    /// flowgate's schema (workflow streams and Durable Streams).
    Flowgate(Store),
    /// A DBOS app's system database.
    Dbos(DbosStore),
    /// flowgate's schema, read from streaming standbys (`FLOWGATE_READ_URL`).
    Replicated(Replicas),
}

impl Source {
    /// A page of a stream with its tail, showing at least `want` (only a standby can be
    /// behind).
    pub async fn read_page(&self, at: PageAt<'_>, want: Want) -> Result<StreamPage, StoreError> {
        match self {
            Source::Replicated(r) => r.read_stream(at, want).await,
            Source::Flowgate(store) => flowgate_page(store, at).await,
            Source::Dbos(d) => d.read_stream(at).await,
        }
    }

    /// Events above version `after` and the run's event clock (`None`: no such run).
    pub async fn events_after(
        &self,
        run: &str,
        after: i64,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        self.events_after_want(run, after, Want::Any).await
    }

    /// Like [`Source::events_after`], with the event clock at least `want`.
    pub async fn events_after_want(
        &self,
        run: &str,
        after: i64,
        want: Want,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        match self {
            Source::Replicated(r) => r.events_after(run, after, want).await,
            Source::Flowgate(store) => store.events_after(run, after).await,
            Source::Dbos(d) => d.events_after(run, after).await,
        }
    }

    /// Timeline steps numbered above `after` (DBOS runs have none here).
    pub async fn steps_after(&self, run: &str, after: i32) -> Result<Vec<StepRow>, StoreError> {
        match self {
            Source::Flowgate(store) => store.steps_after(run, after).await,
            // Steps are few per run: read where they are written.
            Source::Replicated(r) => r.primary().steps_after(run, after).await,
            Source::Dbos(_) => Ok(Vec::new()),
        }
    }

    /// One event.
    pub async fn get_event(&self, run: &str, key: &str) -> Result<Option<EventRow>, StoreError> {
        match self {
            Source::Replicated(r) => r.get_event(run, key).await,
            Source::Flowgate(store) => store.get_event(run, key).await,
            Source::Dbos(d) => d.get_event(run, key).await,
        }
    }

    /// The run's status row.
    pub async fn get_run(&self, run: &str) -> Result<Option<RunRow>, StoreError> {
        match self {
            Source::Replicated(r) => r.get_run(run).await,
            Source::Flowgate(store) => store.get_run(run).await,
            Source::Dbos(d) => d.get_run(run).await,
        }
    }

    /// Fails with [`StoreError::RunNotFound`] unless the run exists.
    pub async fn require_run(&self, run: &str) -> Result<(), StoreError> {
        let exists = match self {
            Source::Flowgate(store) => store.run_exists_str(run).await?,
            Source::Dbos(d) => d.run_exists(run).await?,
            Source::Replicated(r) => r.run_exists(run).await?,
        };
        if exists {
            Ok(())
        } else {
            Err(StoreError::RunNotFound)
        }
    }

    /// The run's streams, at most `limit`.
    pub async fn list_streams(&self, run: &str, limit: i64) -> Result<Vec<StreamInfo>, StoreError> {
        match self {
            Source::Replicated(r) => r.list_streams(run, limit).await,
            Source::Flowgate(store) => store.list_streams(run, limit).await,
            Source::Dbos(d) => d.list_streams(run, limit).await,
        }
    }
}
