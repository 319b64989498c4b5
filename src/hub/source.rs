//! Where a hub's rows live: flowgate's own tables, or a DBOS system database.
//!
//! The hub's topics, fetchers and followers are the same for every source; only these reads
//! differ. Each read is one statement (one snapshot), as the followers require.

use crate::error::StoreError;
use crate::note::TopicKey;
use crate::store::dbos::DbosStore;
use crate::store::{EventRow, RunRow, StepRow, Store, StreamInfo, StreamPage};

/// The tables a hub reads.
#[derive(Clone, Debug)]
pub enum Source {
    /// flowgate's schema (workflow streams and Durable Streams).
    Flowgate(Store),
    /// A DBOS app's system database.
    Dbos(DbosStore),
}

impl Source {
    /// A page of a stream from `from`, with its tail.
    pub async fn read_stream(
        &self,
        run: &str,
        key: &str,
        from: i64,
        limit: i64,
    ) -> Result<StreamPage, StoreError> {
        match (self, TopicKey::of(run, key)) {
            (Source::Flowgate(store), TopicKey::Durable(id)) => {
                store.ds_page(id, from, limit).await
            }
            (Source::Flowgate(_), TopicKey::Invalid) => Ok(StreamPage::default()),
            (Source::Flowgate(store), _) => store.read_stream(run, key, from, limit).await,
            (Source::Dbos(d), _) => d.read_stream(run, key, from, limit).await,
        }
    }

    /// Events above version `after` and the run's event clock (`None`: no such run).
    pub async fn events_after(
        &self,
        run: &str,
        after: i64,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        match self {
            Source::Flowgate(store) => store.events_after(run, after).await,
            Source::Dbos(d) => d.events_after(run, after).await,
        }
    }

    /// Timeline steps numbered above `after` (DBOS runs have none here).
    pub async fn steps_after(&self, run: &str, after: i32) -> Result<Vec<StepRow>, StoreError> {
        match self {
            Source::Flowgate(store) => store.steps_after(run, after).await,
            Source::Dbos(_) => Ok(Vec::new()),
        }
    }

    /// One event.
    pub async fn get_event(&self, run: &str, key: &str) -> Result<Option<EventRow>, StoreError> {
        match self {
            Source::Flowgate(store) => store.get_event(run, key).await,
            Source::Dbos(d) => d.get_event(run, key).await,
        }
    }

    /// The run's status row.
    pub async fn get_run(&self, run: &str) -> Result<Option<RunRow>, StoreError> {
        match self {
            Source::Flowgate(store) => store.get_run(run).await,
            Source::Dbos(d) => d.get_run(run).await,
        }
    }

    /// Fails with [`StoreError::RunNotFound`] unless the run exists.
    pub async fn require_run(&self, run: &str) -> Result<(), StoreError> {
        let exists = match self {
            Source::Flowgate(store) => {
                let found: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM flowgate.workflows WHERE id = $1")
                        .bind(run)
                        .fetch_optional(&store.pool)
                        .await?;
                found.is_some()
            }
            Source::Dbos(d) => d.run_exists(run).await?,
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
            Source::Flowgate(store) => store.list_streams(run, limit).await,
            Source::Dbos(d) => d.list_streams(run, limit).await,
        }
    }
}
