//! Events: latest value per (run, key), versioned by the run's event clock. A workflow sets
//! one inside its step's recording transaction.
//!
//! Values are read back as the JSON text Postgres stores (`value::text`) and handed on as
//! raw JSON, never re-parsed: a value written from SQL that serde_json could not hold (a
//! 1e400, nesting deeper than its recursion limit) is still served byte for byte.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::PgConnection;

use super::Store;
use crate::error::StoreError;

/// One event's current value.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Event key.
    pub key: String,
    /// Latest value, as stored JSON text.
    pub value: Box<RawValue>,
    /// Version of that value; increases with every write to the run's events.
    pub version: i64,
}

/// Stored JSON text as a raw value (Postgres' jsonb text is always valid JSON; anything
/// else would be served as a JSON string rather than break the reader).
pub fn raw_json(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "stored value is not JSON text; serving null");
        RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON"))
    })
}

impl Store {
    /// One event, if set.
    pub async fn get_event(&self, run: &str, key: &str) -> Result<Option<EventRow>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT key, value::text AS "value!", version
               FROM flowgate.events WHERE workflow_id = $1 AND key = $2"#,
            run,
            key
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| EventRow {
            key: r.key,
            value: raw_json(r.value),
            version: r.version,
        }))
    }

    /// Events whose version is above `after`, oldest first, and the run's event clock at the
    /// same snapshot (`None` if the run does not exist).
    pub async fn events_after(
        &self,
        run: &str,
        after: i64,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        // The run row left-joined with its events: a run without new events is one row of
        // NULLs, which still carries the run's event clock.
        let rows = sqlx::query!(
            r#"SELECT e.key AS "key?", e.value::text AS "value?", e.version AS "version?",
                      w.event_version
               FROM flowgate.workflows w
               LEFT JOIN flowgate.events e ON e.workflow_id = w.id AND e.version > $2
               WHERE w.id = $1 ORDER BY e.version"#,
            run,
            after
        )
        .fetch_all(&self.pool)
        .await?;
        let clock = rows.first().map(|r| r.event_version);
        let events = rows
            .into_iter()
            .filter_map(|r| {
                Some(EventRow {
                    key: r.key?,
                    value: raw_json(r.value?),
                    version: r.version?,
                })
            })
            .collect();
        Ok((events, clock))
    }
}

/// Sets event `key` of `run` without notifying, inside the caller's transaction; returns
/// its version.
pub async fn set_event_in(
    conn: &mut PgConnection,
    run: &str,
    key: &str,
    value: &Value,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT flowgate.set_event_quiet($1, $2, $3) AS "version!""#,
        run,
        key,
        value
    )
    .fetch_one(conn)
    .await?)
}
