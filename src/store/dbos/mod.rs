//! Reads of a DBOS system database, mapped onto flowgate's row types so the hub and the
//! HTTP layer serve them unchanged. Every read is one statement (one snapshot).
//!
//! Event versions: DBOS keeps no version per event, but every `set_event` inside a workflow
//! is a numbered operation (`function_id`) recorded in `workflow_events_history`, and a
//! workflow's operations run one after another. So an event's version is the highest
//! `function_id` recorded for its key plus one, and the run's event clock is the highest over
//! all keys plus one: both only grow, and a value is always written in the same transaction
//! as its history row.
//!
//! Writes: only messages, through DBOS's own `send_message` SQL function.

pub mod decode;
pub mod schema;
pub mod trigger;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;

use crate::error::StoreError;
use crate::store::{EventRow, PageAt, RunRow, RunStatus, StreamInfo, StreamPage};
use decode::is_close_sentinel;

/// True for the statuses after which a DBOS workflow writes nothing more: flowgate's
/// finished ones and MAX_RECOVERY_ATTEMPTS_EXCEEDED.
pub fn is_terminal(status: Option<&str>) -> bool {
    status
        .and_then(RunStatus::parse)
        .is_some_and(|s| s.is_finished() || s == RunStatus::MaxRecoveryAttemptsExceeded)
}

/// Handle to a DBOS system database.
#[derive(Clone, Debug)]
pub struct DbosStore {
    /// The connection pool (to the DBOS database, not flowgate's).
    pub pool: PgPool,
    /// The DBOS schema, already quoted for SQL.
    schema: String,
}

/// (status, last offset, last value, last serialization, offset, value, serialization)
type StreamJoin = (
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
);

/// (key, value, serialization, version, clock)
type EventJoin = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);

/// (id, name, status, output, error, serialization, created_at ms, updated_at ms)
type StatusRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

impl DbosStore {
    /// A store for `pool` and the validated schema name `schema`.
    pub fn new(pool: PgPool, schema: &str) -> Self {
        DbosStore {
            pool,
            schema: format!("\"{schema}\""),
        }
    }

    /// The quoted schema, for SQL text.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Up to `at.limit` records of stream (`at.run`, `at.key`) from offset `at.from`, with the tail:
    /// closed at the sentinel, or once the run has finished (nothing more can be written).
    pub async fn read_stream(&self, at: PageAt<'_>) -> Result<StreamPage, StoreError> {
        let s = &self.schema;
        let sql = format!(
            r#"WITH st AS (SELECT status FROM {s}.workflow_status WHERE workflow_uuid = $1),
               last AS (SELECT "offset", value, serialization FROM {s}.streams
                        WHERE workflow_uuid = $1 AND key = $2 ORDER BY "offset" DESC LIMIT 1),
               recs AS (SELECT "offset", value, serialization FROM {s}.streams
                        WHERE workflow_uuid = $1 AND key = $2 AND "offset" >= $3
                        ORDER BY "offset" LIMIT $4)
               SELECT st.status, last."offset", last.value, last.serialization,
                      recs."offset", recs.value, recs.serialization
               FROM st LEFT JOIN last ON true LEFT JOIN recs ON true
               ORDER BY recs."offset""#
        );
        let rows: Vec<StreamJoin> = sqlx::query_as(&sql)
            .bind(at.run)
            .bind(at.key)
            .bind(at.from.min(i32::MAX as i64) as i32)
            .bind(at.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut page = StreamPage::default();
        let mut finished = false;
        for (status, last_off, last_val, last_ser, off, val, ser) in rows {
            finished = is_terminal(status.as_deref());
            if let (Some(lo), Some(lv)) = (last_off, last_val.as_deref()) {
                if is_close_sentinel(lv, last_ser.as_deref()) {
                    page.closed = true;
                    page.next = lo as i64;
                } else {
                    page.next = lo as i64 + 1;
                }
            }
            if let (Some(o), Some(v)) = (off, val) {
                if is_close_sentinel(&v, ser.as_deref()) {
                    continue;
                }
                let text = decode::to_json_text(&v, ser.as_deref());
                page.records.push((o as i64, text.into_bytes().into()));
            }
        }
        // Records past a sentinel (a write after close) are never served.
        let next = page.next;
        page.records.retain(|(o, _)| *o < next);
        page.closed |= finished;
        Ok(page)
    }

    /// Events whose version is above `after`, oldest first, and the run's event clock
    /// (`None` if the workflow does not exist).
    pub async fn events_after(
        &self,
        run: &str,
        after: i64,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        let s = &self.schema;
        let sql = format!(
            r#"WITH st AS (SELECT 1 FROM {s}.workflow_status WHERE workflow_uuid = $1),
               h AS (SELECT key, max(function_id)::int8 + 1 AS version
                     FROM {s}.workflow_events_history WHERE workflow_uuid = $1 GROUP BY key)
               SELECT e.key, e.value, e.serialization, COALESCE(h.version, 1),
                      COALESCE((SELECT max(version) FROM h), 0)
               FROM st LEFT JOIN {s}.workflow_events e ON e.workflow_uuid = $1
               LEFT JOIN h ON h.key = e.key"#
        );
        let rows: Vec<EventJoin> = sqlx::query_as(&sql).bind(run).fetch_all(&self.pool).await?;
        let Some(first) = rows.first() else {
            return Ok((Vec::new(), None));
        };
        let mut clock = first.4;
        let mut events: Vec<EventRow> = rows
            .into_iter()
            .filter_map(|(k, v, ser, ver, _)| {
                let version = ver?;
                clock = clock.max(version);
                Some(EventRow {
                    key: k?,
                    value: serde_json::value::RawValue::from_string(decode::to_json_text(
                        &v?,
                        ser.as_deref(),
                    ))
                    .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
                    version,
                })
            })
            .filter(|e| e.version > after)
            .collect();
        events.sort_by_key(|e| e.version);
        Ok((events, Some(clock)))
    }

    /// One event, if set.
    pub async fn get_event(&self, run: &str, key: &str) -> Result<Option<EventRow>, StoreError> {
        let (events, _) = self.events_after(run, i64::MIN).await?;
        Ok(events.into_iter().find(|e| e.key == key))
    }

    /// The workflow's status, output and error (3.x keeps them in `workflow_output`).
    pub async fn get_run(&self, run: &str) -> Result<Option<RunRow>, StoreError> {
        let rows = self.status_rows(Some(run), None, None, 1).await?;
        Ok(rows.into_iter().next())
    }

    /// True if the workflow exists.
    pub async fn run_exists(&self, run: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT 1 FROM {}.workflow_status WHERE workflow_uuid = $1",
            self.schema
        );
        let found: Option<i32> = sqlx::query_scalar(&sql)
            .bind(run)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Workflows, newest first, filtered by status and workflow name.
    pub async fn list_runs(
        &self,
        status: Option<&str>,
        workflow: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        self.status_rows(None, status, workflow, limit).await
    }

    async fn status_rows(
        &self,
        run: Option<&str>,
        status: Option<&str>,
        workflow: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let s = &self.schema;
        let sql = format!(
            r#"SELECT w.workflow_uuid, w.name, w.status,
                      COALESCE(o.output, w.output), COALESCE(o.error, w.error),
                      w.serialization, w.created_at, w.updated_at
               FROM {s}.workflow_status w
               LEFT JOIN {s}.workflow_output o ON o.workflow_uuid = w.workflow_uuid
               WHERE ($1::text IS NULL OR w.workflow_uuid = $1)
                 AND ($2::text IS NULL OR w.status = $2)
                 AND ($3::text IS NULL OR w.name = $3)
               ORDER BY w.created_at DESC LIMIT $4"#
        );
        let rows: Vec<StatusRow> = sqlx::query_as(&sql)
            .bind(run)
            .bind(status)
            .bind(workflow)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(run_row).collect())
    }

    /// The streams of a workflow, in the order they were first written.
    pub async fn list_streams(&self, run: &str, limit: i64) -> Result<Vec<StreamInfo>, StoreError> {
        let s = &self.schema;
        let sql = format!(
            r#"SELECT key, max("offset")::int8, min(function_id),
                      bool_or(value IN ('"{sentinel}"', '{sentinel}')) AS closed
               FROM {s}.streams WHERE workflow_uuid = $1
               GROUP BY key ORDER BY 3, key LIMIT $2"#,
            sentinel = decode::CLOSED_SENTINEL
        );
        let rows: Vec<(String, i64, i32, bool)> = sqlx::query_as(&sql)
            .bind(run)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(key, last, _, closed)| StreamInfo {
                key,
                next: if closed { last } else { last + 1 },
                closed,
            })
            .collect())
    }

    /// `(workflow, status, updated_at)` of the given workflows, for the status watcher.
    pub async fn statuses(
        &self,
        runs: &[String],
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let sql = format!(
            "SELECT workflow_uuid, COALESCE(status, ''), updated_at
             FROM {}.workflow_status WHERE workflow_uuid = ANY($1)",
            self.schema
        );
        Ok(sqlx::query_as(&sql)
            .bind(runs)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The stored message with this id, as JSON, if any (approval links read back which
    /// decision was sent first).
    pub async fn message(&self, message_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let sql = format!(
            "SELECT message, serialization FROM {}.notifications WHERE message_uuid = $1",
            self.schema
        );
        let row: Option<(String, Option<String>)> = sqlx::query_as(&sql)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(m, ser)| decode::to_value(&m, ser.as_deref())))
    }

    /// Sends `body` (JSON text) to workflow `run` on `topic` through DBOS's own
    /// `send_message` (portable JSON, idempotent by `message_id`). A missing workflow is
    /// [`StoreError::RunNotFound`].
    pub async fn send_message(
        &self,
        run: &str,
        topic: &str,
        body: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {}.send_message($1, $2::text::json, $3, $4)::text",
            self.schema
        );
        sqlx::query_scalar::<_, Option<String>>(&sql)
            .bind(run)
            .bind(body)
            .bind(topic)
            .bind(message_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }
}

/// What [`DbosStore::enqueue`] starts.
#[derive(Debug, Clone)]
pub struct Enqueue<'a> {
    /// The DBOS workflow's registered name.
    pub workflow: &'a str,
    /// The DBOS queue (registered in the app).
    pub queue: &'a str,
    /// Positional arguments, each JSON text.
    pub args: Vec<String>,
    /// Named arguments, a JSON object's text.
    pub kwargs: String,
    /// The workflow id (DBOS picks one when `None`).
    pub id: Option<&'a str>,
    /// The application version to run it on.
    pub app_version: Option<&'a str>,
}

impl DbosStore {
    /// Enqueues a DBOS workflow through DBOS's own `enqueue_workflow` (portable inputs);
    /// returns its id. Enqueuing an existing id leaves that workflow as it is.
    pub async fn enqueue(&self, e: &Enqueue<'_>) -> Result<String, StoreError> {
        let sql = format!(
            "SELECT {}.enqueue_workflow(workflow_name => $1, queue_name => $2,
                positional_args => $3::text[]::json[], named_args => $4::text::json,
                workflow_id => $5, app_version => $6)",
            self.schema
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(e.workflow)
            .bind(e.queue)
            .bind(&e.args)
            .bind(&e.kwargs)
            .bind(e.id)
            .bind(e.app_version)
            .fetch_one(&self.pool)
            .await?)
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A DBOS status; one this version does not know (or none) reads as PENDING, a run that
/// may still change.
fn dbos_status(status: Option<&str>) -> RunStatus {
    status
        .and_then(RunStatus::parse)
        .unwrap_or(RunStatus::Pending)
}

fn run_row(r: StatusRow) -> RunRow {
    let (id, name, status, output, error, ser, created, updated) = r;
    RunRow {
        id,
        workflow: name.unwrap_or_default(),
        status: dbos_status(status.as_deref()),
        output: output.map(|o| decode::to_value(&o, ser.as_deref())),
        error: error.map(|e| decode::to_value(&e, ser.as_deref())),
        tags: Vec::new(),
        created_at: millis(created),
        updated_at: millis(updated),
        outcome: None,
        started_at: None,
        finished_at: None,
        parent_id: None,
    }
}
