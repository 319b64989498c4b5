//! Rows in Postgres: runs, events, messages, streams, steps, executors and queues,
//! approvals, retention, the WAL probes, Durable Streams and a DBOS app's schema. Every SQL
//! statement of the server lives here, one module per table group, and is checked against
//! the migrations at compile time (`sqlx::query!` and friends; `.sqlx/` holds the query
//! descriptions for building without a database, `.ci/sqlx-check.sh` keeps them current).
//! The few statements built at run time name an identifier no parameter can carry (a DBOS
//! app's configured schema, a benchmark's scratch database) and say so.
//!
//! The store does not decide when anyone is woken: callers publish a [`crate::note::Note`]
//! after a write commits, and `notify` sends notes through the statements here that carry
//! them (`notes.rs`; the group commit's batches, whose notes commit with their writes). The
//! `flowgate.*` SQL functions for outside producers notify themselves.

pub mod approvals;
pub mod batch;
pub mod databases;
pub mod dbos;
pub mod durable_streams;
pub mod events;
pub mod executors;
pub mod fixtures;
pub mod messages;
pub mod notes;
pub mod probe;
pub mod queues;
pub mod retention;
pub mod run_changes;
pub mod run_status;
pub mod run_writes;
pub mod runs;
pub mod stats;
pub mod steps;
pub mod streams;
pub mod upkeep;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use events::EventRow;
pub use run_status::RunStatus;
pub use runs::RunRow;
pub use steps::StepRow;
pub use streams::{PageAt, StreamInfo, StreamPage};

/// Embedded migrations (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Handle to the database.
#[derive(Clone, Debug)]
pub struct Store {
    /// The connection pool.
    pub pool: PgPool,
}

impl Store {
    /// Connects a pool of at most `max` connections, failing fast if Postgres is unreachable.
    pub async fn connect(url: &str, max: u32) -> Result<Self, sqlx::Error> {
        let opts: PgConnectOptions = url.parse()?;
        let opts = opts.application_name("flowgate");
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Store { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// True if the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query!("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await
            .is_ok()
    }
}
