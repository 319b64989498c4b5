//! Events: latest value per (run, key), versioned by the run's event clock.

use serde::Serialize;
use serde_json::Value;

use super::Store;
use crate::error::StoreError;
use crate::ids::{Key, RunId};

/// A run row left-joined with its events: (key, value, version, run's event clock).
type EventJoin = (Option<String>, Option<Value>, Option<i64>, i64);

/// One event's current value.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct EventRow {
    /// Event key.
    pub key: String,
    /// Latest value.
    pub value: Value,
    /// Version of that value; increases with every write to the run's events.
    pub version: i64,
}

impl Store {
    /// Sets an event without notifying; returns the new version.
    pub async fn set_event(
        &self,
        run: &RunId,
        key: &Key,
        value: &Value,
    ) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT flowgate.set_event_quiet($1, $2, $3)")
                .bind(run.as_str())
                .bind(key.as_str())
                .bind(value)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// One event, if set.
    pub async fn get_event(&self, run: &str, key: &str) -> Result<Option<EventRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, value, version FROM flowgate.events WHERE workflow_id = $1 AND key = $2",
        )
        .bind(run)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Events whose version is above `after`, oldest first, and the run's event clock at the
    /// same snapshot (`None` if the run does not exist).
    pub async fn events_after(
        &self,
        run: &str,
        after: i64,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        let rows: Vec<EventJoin> = sqlx::query_as(
            "SELECT e.key, e.value, e.version, w.event_version
             FROM flowgate.workflows w
             LEFT JOIN flowgate.events e ON e.workflow_id = w.id AND e.version > $2
             WHERE w.id = $1 ORDER BY e.version",
        )
        .bind(run)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        let clock = rows.first().map(|r| r.3);
        let events = rows
            .into_iter()
            .filter_map(|(k, v, ver, _)| {
                Some(EventRow {
                    key: k?,
                    value: v?,
                    version: ver?,
                })
            })
            .collect();
        Ok((events, clock))
    }
}
