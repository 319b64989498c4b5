//! Durable stream rows: metadata lookups, reads that stitch a fork chain, deletes, the
//! sliding-TTL read mark and the background expiry sweep. Appends and creation live in
//! [`super::write`].

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use tokio_util::sync::CancellationToken;

use crate::error::StoreError;
use crate::store::{Store, StreamPage};

/// Columns of [`Meta`], for every metadata query.
pub(crate) const META_COLUMNS: &str = "s.id, s.content_type, s.tail, s.closed, s.ttl_seconds, \
     s.expires_at, s.last_seq, s.closed_by, s.closed_epoch, s.closed_seq, s.source_id, \
     s.fork_offset, s.fork_from, s.fork_at, s.fork_sub, s.deleted, flowgate.ds_expired(s) AS expired";

/// A stream's metadata at one snapshot.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Meta {
    /// Incarnation id (keys rows, topics and ETags).
    pub id: i64,
    /// Content type as given at creation.
    pub content_type: String,
    /// Rows visible, inherited ones included: the next offset.
    pub tail: i64,
    /// Closed: nothing more will be appended.
    pub closed: bool,
    /// Sliding time to live in seconds.
    pub ttl_seconds: Option<i64>,
    /// Absolute expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last `Stream-Seq`.
    pub last_seq: Option<Vec<u8>>,
    /// Producer whose append closed the stream.
    pub closed_by: Option<String>,
    /// Its epoch.
    pub closed_epoch: Option<i64>,
    /// Its sequence number.
    pub closed_seq: Option<i64>,
    /// Fork source.
    pub source_id: Option<i64>,
    /// Rows inherited from the source chain.
    pub fork_offset: Option<i64>,
    /// Source path as requested.
    pub fork_from: Option<String>,
    /// Fork offset as requested (resolved when it was omitted).
    pub fork_at: Option<i64>,
    /// Fork sub-offset as requested.
    pub fork_sub: Option<i64>,
    /// Deleted while forks still read it (410).
    pub deleted: bool,
    /// Past its TTL or expiry (behaves as missing).
    pub expired: bool,
}

impl Meta {
    /// True for JSON mode.
    pub fn is_json(&self) -> bool {
        super::media_type(&self.content_type) == "application/json"
    }
}

/// Most bytes in one catch-up response (one row is always returned, whatever its size).
pub const CHUNK_BYTES: i64 = 1 << 20;

/// Most rows in one catch-up response.
pub const CHUNK_ROWS: i64 = 1000;

/// Loads a stream by path, optionally locking its row.
pub(crate) async fn meta_by_path<'e>(
    db: impl PgExecutor<'e>,
    path: &str,
    lock: bool,
) -> Result<Option<Meta>, StoreError> {
    let sql = format!(
        "SELECT {META_COLUMNS} FROM flowgate.ds_streams s WHERE s.path = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(&sql).bind(path).fetch_optional(db).await?)
}

/// Reads rows `after+1 ..= upto` of stream `id` through its fork chain, in order, stopping
/// after [`CHUNK_ROWS`] rows or once [`CHUNK_BYTES`] are reached (at least one row).
pub(crate) async fn read_rows<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    after: i64,
    upto: i64,
    max_rows: i64,
) -> Result<Vec<(i64, Bytes)>, StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        r#"WITH RECURSIVE chain (id, source_id, lo, hi) AS (
               SELECT id, source_id, coalesce(fork_offset, 0), $3::bigint
               FROM flowgate.ds_streams WHERE id = $1
               UNION ALL
               SELECT s.id, s.source_id, coalesce(s.fork_offset, 0), c.lo
               FROM chain c JOIN flowgate.ds_streams s ON s.id = c.source_id
           )
           SELECT seq, payload FROM (
               SELECT seq, payload,
                      sum(length(payload)) OVER (ORDER BY seq) - length(payload) AS before
               FROM (
                   SELECT r.seq, r.payload
                   FROM chain c
                   JOIN flowgate.ds_records r
                     ON r.stream_id = c.id AND r.seq > c.lo AND r.seq <= c.hi AND r.seq > $2
                   ORDER BY r.seq
                   LIMIT $4
               ) a
           ) x
           WHERE before < $5 OR seq = $2 + 1
           ORDER BY seq"#,
    )
    .bind(id)
    .bind(after)
    .bind(upto)
    .bind(max_rows)
    .bind(CHUNK_BYTES)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(s, p)| (s, Bytes::from(p))).collect())
}

impl Store {
    /// Metadata of the stream at `path`, if any row holds that path.
    pub async fn ds_meta(&self, path: &str) -> Result<Option<Meta>, StoreError> {
        meta_by_path(&self.pool, path, false).await
    }

    /// Rows after offset `after` up to `upto`, one catch-up chunk.
    pub async fn ds_read(
        &self,
        id: i64,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(i64, Bytes)>, StoreError> {
        read_rows(&self.pool, id, after, upto, CHUNK_ROWS).await
    }

    /// The hub's read of durable stream `id` (hub offsets are row numbers minus one). A
    /// stream that is gone, deleted or expired reads as closed and empty, which ends every
    /// follower.
    pub async fn ds_page(&self, id: i64, from: i64, limit: i64) -> Result<StreamPage, StoreError> {
        let meta: Option<(i64, bool, bool, bool)> = sqlx::query_as(
            "SELECT s.tail, s.closed, s.deleted, flowgate.ds_expired(s)
             FROM flowgate.ds_streams s WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let (tail, closed) = match meta {
            Some((tail, closed, false, false)) => (tail, closed),
            _ => {
                return Ok(StreamPage {
                    records: Vec::new(),
                    next: 0,
                    closed: true,
                    gone: false,
                })
            }
        };
        let records = if limit > 0 && from < tail {
            read_rows(&self.pool, id, from, tail, limit)
                .await?
                .into_iter()
                .map(|(seq, p)| (seq - 1, p))
                .collect()
        } else {
            Vec::new()
        };
        Ok(StreamPage {
            records,
            next: tail,
            closed,
            gone: false,
        })
    }

    /// Records a read of a stream with a sliding TTL (at most one write per 100 ms per
    /// stream: a recent mark is left alone).
    pub async fn ds_touch(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO flowgate.ds_reads (stream_id, read_at) VALUES ($1, now())
             ON CONFLICT (stream_id) DO UPDATE SET read_at = now()
             WHERE flowgate.ds_reads.read_at < now() - interval '100 milliseconds'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the stream at `path`: `Ok(Some(id))` when deleted, `Ok(None)` when there is no
    /// live stream there, `Err(Gone)` through [`DeleteOutcome`].
    pub async fn ds_delete(&self, path: &str) -> Result<DeleteOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(meta) = meta_by_path(&mut *tx, path, true).await? else {
            return Ok(DeleteOutcome::Missing);
        };
        if meta.deleted {
            return Ok(DeleteOutcome::Gone);
        }
        let keep_path = !meta.expired;
        sqlx::query("SELECT flowgate.ds_drop($1, $2)")
            .bind(meta.id)
            .bind(keep_path)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if meta.expired {
            DeleteOutcome::Missing
        } else {
            DeleteOutcome::Deleted(meta.id)
        })
    }

    /// Drops every expired stream (forks keep the rows they read). Returns how many.
    pub async fn ds_sweep(&self) -> Result<usize, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT s.id FROM flowgate.ds_streams s
             WHERE s.path IS NOT NULL AND NOT s.deleted
               AND (s.expires_at IS NOT NULL OR s.ttl_seconds IS NOT NULL)
               AND flowgate.ds_expired(s)
             LIMIT 1000",
        )
        .fetch_all(&self.pool)
        .await?;
        for id in &ids {
            sqlx::query("SELECT flowgate.ds_drop($1, false)")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(ids.len())
    }
}

/// What a DELETE found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted (stream id, for the wake-up note).
    Deleted(i64),
    /// Nothing live at the path (404).
    Missing,
    /// Already deleted but kept for its forks (410).
    Gone,
}

/// Sweeps expired streams every `period` until `cancel` fires.
pub async fn sweep(pool: PgPool, period: Duration, cancel: CancellationToken) {
    let store = Store { pool };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.ds_sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(streams = n, "expired durable streams dropped"),
            Err(e) => tracing::warn!(error = %e, "durable stream sweep failed"),
        }
    }
}
