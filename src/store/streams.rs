//! Streams: ordered, gapless records per (run, key), appended under the stream row's lock.
//! A workflow closes one inside its step's recording transaction.

use bytes::Bytes;
use sqlx::PgConnection;

use super::Store;
use crate::error::StoreError;
use crate::ids::{Key, RunId};

/// Which page of which stream a read asks for: up to `limit` records from offset `from`.
#[derive(Debug, Clone, Copy)]
pub struct PageAt<'a> {
    /// The run (or the Durable Streams namespace).
    pub run: &'a str,
    /// The stream key (or a Durable Stream's id).
    pub key: &'a str,
    /// First offset wanted.
    pub from: i64,
    /// Most records wanted (0: only the tail).
    pub limit: i64,
}

impl<'a> PageAt<'a> {
    /// No records, only the tail (next offset and close marker).
    pub fn tail(run: &'a str, key: &'a str) -> Self {
        PageAt {
            run,
            key,
            from: 0,
            limit: 0,
        }
    }
}

/// A slice of a stream read in one statement (one snapshot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamPage {
    /// `(offset, payload)` in offset order, contiguous from the requested offset.
    pub records: Vec<(i64, Bytes)>,
    /// The stream's next offset at this snapshot (0 if it does not exist yet).
    pub next: i64,
    /// True if the close marker is set.
    pub closed: bool,
    /// True if the run no longer exists (removed by retention): nothing will follow.
    pub gone: bool,
}

impl StreamPage {
    /// True once a reader at `pos` has everything and the stream is closed.
    pub fn ended_at(&self, pos: i64) -> bool {
        self.closed && pos >= self.next
    }
}

impl Store {
    /// Appends payloads in order without notifying; returns the first offset.
    pub async fn append(
        &self,
        run: &RunId,
        key: &Key,
        payloads: &[Vec<u8>],
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT flowgate.append_quiet($1, $2, $3) AS "first!""#,
            run.as_str(),
            key.as_str(),
            payloads
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Sets the close marker (idempotent) without notifying; returns the final next offset.
    pub async fn close_stream(&self, run: &RunId, key: &Key) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        close_stream_in(&mut conn, run.as_str(), key.as_str()).await
    }

    /// Reads up to `at.limit` records from offset `at.from`, with the stream's tail, in one snapshot.
    pub async fn read_stream(&self, at: PageAt<'_>) -> Result<StreamPage, StoreError> {
        // The stream row left-joined with its records in the window: a stream with none
        // there is one row of NULLs, which still carries its tail.
        let rows = sqlx::query!(
            r#"SELECT s.next_offset, s.closed, r."offset" AS "offset?", r.payload AS "payload?"
               FROM flowgate.streams s
               LEFT JOIN flowgate.stream_records r
                 ON r.workflow_id = s.workflow_id AND r.key = s.key
                AND r."offset" >= $3 AND r."offset" < $3 + $4
               WHERE s.workflow_id = $1 AND s.key = $2
               ORDER BY r."offset""#,
            at.run,
            at.key,
            at.from,
            at.limit
        )
        .fetch_all(&self.pool)
        .await?;
        let mut page = StreamPage::default();
        if rows.is_empty() {
            // No stream row: not created yet, or the run was removed.
            page.gone = !self.run_exists_str(at.run).await?;
        }
        for row in rows {
            page.next = row.next_offset;
            page.closed = row.closed;
            if let (Some(o), Some(p)) = (row.offset, row.payload) {
                page.records.push((o, Bytes::from(p)));
            }
        }
        Ok(page)
    }
}

/// A stream of a run: its key, next offset and close marker.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StreamInfo {
    /// Stream key.
    pub key: String,
    /// Next offset (the number of records).
    pub next: i64,
    /// True once closed.
    pub closed: bool,
}

impl Store {
    /// The streams of run `run`, oldest first, at most `limit` of them.
    pub async fn list_streams(&self, run: &str, limit: i64) -> Result<Vec<StreamInfo>, StoreError> {
        Ok(sqlx::query_as!(
            StreamInfo,
            "SELECT key, next_offset AS next, closed FROM flowgate.streams
             WHERE workflow_id = $1 ORDER BY created_at, key LIMIT $2",
            run,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Closes stream `key` of `run` without notifying, on `conn` (inside the caller's
/// transaction, for a workflow) (idempotent); returns its final length.
pub async fn close_stream_in(
    conn: &mut PgConnection,
    run: &str,
    key: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT flowgate.close_stream_quiet($1, $2) AS "next!""#,
        run,
        key
    )
    .fetch_one(conn)
    .await?)
}
