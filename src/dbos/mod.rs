//! The DBOS source: serves the runs of an existing DBOS Transact app from DBOS's own tables.
//!
//! ```text
//! DBOS app ──► dbos.streams / workflow_events / notifications ──► its own NOTIFY
//!               (coalesced ~10 ms, after commit)                        │
//!   listener::DbosSink (1 conn on the DBOS database) ◄──────────────────┘
//!        │  "<workflow>::<key>" hints          watch: status of watched runs, every ≤250 ms
//!        ▼                                            │
//!   a second Hub whose topics read through store::DbosStore ◄──┘ ──► http::dbos (/v1/dbos/…)
//! ```
//!
//! [`schema`] refuses unsupported or sharded schemas at start; [`decode`] turns DBOS's value
//! formats into JSON (never unpickling); [`store`] holds every query. DBOS notifies nothing on
//! status changes, so [`watch`] re-reads the status of runs someone is watching, and nothing
//! when no one is (or [`trigger`], installed on request, notifies them instead). Nothing
//! here runs unless `FLOWGATE_DBOS_URL` is set.

pub mod cli;
pub mod listen;
pub mod schema;
pub mod trigger;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{Hub, Source};
use crate::metrics::Metrics;
use crate::notify::{ListenLoop, ListenerState};
pub use crate::store::dbos::DbosStore;
use crate::store::Store;
pub use schema::{SchemaError, SchemaInfo};

pub use crate::config::dbos::DbosSettings;

impl DbosSettings {
    /// The safety re-check period for a schema with or without notify triggers.
    pub fn recheck_period(&self, listen_notify: bool) -> Duration {
        let default = if listen_notify { 10.0 } else { 1.0 };
        Duration::from_secs_f64(self.recheck.unwrap_or(default).max(0.05))
    }

    /// The status re-read period (capped at 250 ms, at least 10 ms).
    pub fn status_period(&self) -> Duration {
        Duration::from_millis(self.status_interval_ms.clamp(10, 250))
    }
}

/// The running DBOS source: what the HTTP handlers use.
#[derive(Clone)]
pub struct Dbos {
    /// Reads and message sends.
    pub store: DbosStore,
    /// Fan-out over DBOS's tables.
    pub hub: Hub,
    /// The DBOS listener's health.
    pub listener: Arc<ListenerState>,
    /// What the schema check found.
    pub info: SchemaInfo,
}

/// A database error's message without anything from the connection URL (sqlx never puts
/// the password in one, but a configuration error can echo the URL: those are replaced).
pub fn redacted(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid FLOWGATE_DBOS_URL".into(),
        other => other.to_string(),
    }
}

/// Connects to the DBOS database, checks its schema and starts the listener, the status
/// watcher and the safety re-check. `Ok(None)` when no DBOS URL is configured.
pub async fn start(
    settings: &DbosSettings,
    store: &Store,
    metrics: &Metrics,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Option<Dbos>, SchemaError> {
    let Some(url) = settings.url.as_deref() else {
        return Ok(None);
    };
    let bad_url = |_| SchemaError::Db("invalid FLOWGATE_DBOS_URL".into());
    let opts: PgConnectOptions = url.parse().map_err(bad_url)?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts.application_name("flowgate-dbos"))
        .await
        .map_err(|e| SchemaError::Db(redacted(&e)))?;
    let info = schema::check(&pool, &settings.schema).await?;
    let pg: tokio_postgres::Config = url
        .parse()
        .map_err(|_| SchemaError::Db("invalid FLOWGATE_DBOS_URL".into()))?;
    let dbos_store = DbosStore::new(pool, &settings.schema);
    let hub = Hub::with_source(
        store.clone(),
        Source::Dbos(dbos_store.clone()),
        shutdown.clone(),
        metrics.clone(),
    );
    let state = Arc::new(ListenerState::default());
    let listener = ListenLoop {
        config: pg,
        app_name: "flowgate-dbos-listener",
        channels: listen::CHANNELS.to_vec(),
        state: state.clone(),
        sink: listen::DbosSink { hub: hub.clone() },
    };
    let recheck = settings.recheck_period(info.listen_notify);
    if !info.listen_notify {
        tracing::warn!(
            recheck_s = recheck.as_secs_f64(),
            "the DBOS app runs without LISTEN/NOTIFY: its writes reach flowgate by re-checks only"
        );
    }
    tracker.spawn(listener.run(shutdown.clone()));
    if info.status_trigger {
        tracing::info!("DBOS status trigger installed: status changes are notified, not re-read");
    } else {
        tracker.spawn(watch::watch_status(
            hub.clone(),
            dbos_store.clone(),
            settings.status_period(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(hub.clone().safety_recheck(recheck));
    tracing::info!(
        version = info.version,
        schema = %settings.schema,
        listen_notify = info.listen_notify,
        "DBOS source ready"
    );
    Ok(Some(Dbos {
        store: dbos_store,
        hub,
        listener: state,
        info,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_url() {
        let s = DbosSettings {
            url: Some("postgres://u:secret@h/db".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("secret"));
        assert_eq!(s.recheck_period(false), Duration::from_secs(1));
        assert_eq!(s.recheck_period(true), Duration::from_secs(10));
        assert_eq!(s.status_period(), Duration::from_millis(200));
    }
}
