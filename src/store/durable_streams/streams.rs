//! Durable stream rows (`flowgate.ds_streams`): metadata lookups, creation, deletes and the
//! expiry sweep. A stream's records are in [`super::records`].

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::error::StoreError;
use crate::store::Store;

/// A stream's metadata at one snapshot.
#[derive(Debug, Clone)]
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

/// A new stream's row.
#[derive(Debug, Clone)]
pub struct NewStream<'a> {
    /// Path.
    pub path: &'a str,
    /// Content type.
    pub content_type: &'a str,
    /// Rows it starts with, inherited ones included.
    pub tail: i64,
    /// Created closed.
    pub closed: bool,
    /// Sliding time to live in seconds.
    pub ttl_seconds: Option<i64>,
    /// Absolute expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Fork source.
    pub source_id: Option<i64>,
    /// Rows inherited from the source chain.
    pub fork_offset: Option<i64>,
    /// Source path as requested.
    pub fork_from: Option<&'a str>,
    /// Fork offset (resolved).
    pub fork_at: Option<i64>,
    /// Fork sub-offset as requested.
    pub fork_sub: Option<i64>,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted (stream id, for the wake-up note).
    Deleted(i64),
    /// Nothing live at the path (404).
    Missing,
    /// Already deleted but kept for its forks (410).
    Gone,
}

/// The [`Meta`] of the stream at `$path`, the statement ending in `$lock`.
macro_rules! meta_query {
    ($path:expr, $lock:literal) => {
        sqlx::query_as!(
            Meta,
            r#"SELECT s.id, s.content_type, s.tail, s.closed, s.ttl_seconds, s.expires_at,
                      s.last_seq, s.closed_by, s.closed_epoch, s.closed_seq, s.source_id,
                      s.fork_offset, s.fork_from, s.fork_at, s.fork_sub, s.deleted,
                      flowgate.ds_expired(s) AS "expired!"
               FROM flowgate.ds_streams s WHERE s.path = $1"#
                + $lock,
            $path
        )
    };
}

/// The stream at `path`, if any row holds that path.
async fn meta<'e>(db: impl PgExecutor<'e>, path: &str) -> Result<Option<Meta>, StoreError> {
    Ok(meta_query!(path, "").fetch_optional(db).await?)
}

/// Loads a stream by path in the caller's transaction, optionally locking its row.
pub async fn meta_by_path(
    conn: &mut PgConnection,
    path: &str,
    lock: bool,
) -> Result<Option<Meta>, StoreError> {
    if !lock {
        return meta(conn, path).await;
    }
    Ok(meta_query!(path, " FOR UPDATE")
        .fetch_optional(conn)
        .await?)
}

/// Drops stream `id` (`flowgate.ds_drop`: forks keep the rows they read); with `keep_path`
/// the path stays taken by the deleted stream while forks remain.
pub async fn drop_stream(
    conn: &mut PgConnection,
    id: i64,
    keep_path: bool,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"SELECT flowgate.ds_drop($1, $2) AS "dropped: ()""#,
        id,
        keep_path
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts one more fork of stream `id`.
pub async fn add_fork(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE flowgate.ds_streams SET forks = forks + 1 WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts a stream's row; returns its id.
pub async fn insert_stream(conn: &mut PgConnection, s: &NewStream<'_>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO flowgate.ds_streams
           (path, content_type, tail, closed, ttl_seconds, expires_at, source_id,
            fork_offset, fork_from, fork_at, fork_sub)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        s.path,
        s.content_type,
        s.tail,
        s.closed,
        s.ttl_seconds,
        s.expires_at,
        s.source_id,
        s.fork_offset,
        s.fork_from,
        s.fork_at,
        s.fork_sub,
    )
    .fetch_one(conn)
    .await?)
}

impl Store {
    /// Metadata of the stream at `path`, if any row holds that path.
    pub async fn ds_meta(&self, path: &str) -> Result<Option<Meta>, StoreError> {
        meta(&self.pool, path).await
    }

    /// Deletes the stream at `path`: [`DeleteOutcome::Deleted`] when deleted,
    /// [`DeleteOutcome::Missing`] when there is no live stream there,
    /// [`DeleteOutcome::Gone`] when it is already deleted but kept for its forks.
    pub async fn ds_delete(&self, path: &str) -> Result<DeleteOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(meta) = meta_by_path(&mut tx, path, true).await? else {
            return Ok(DeleteOutcome::Missing);
        };
        if meta.deleted {
            return Ok(DeleteOutcome::Gone);
        }
        let keep_path = !meta.expired;
        drop_stream(&mut tx, meta.id, keep_path).await?;
        tx.commit().await?;
        Ok(if meta.expired {
            DeleteOutcome::Missing
        } else {
            DeleteOutcome::Deleted(meta.id)
        })
    }

    /// Drops every expired stream (forks keep the rows they read). Returns how many.
    pub async fn ds_sweep(&self) -> Result<usize, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar!(
            "SELECT s.id FROM flowgate.ds_streams s
             WHERE s.path IS NOT NULL AND NOT s.deleted
               AND (s.expires_at IS NOT NULL OR s.ttl_seconds IS NOT NULL)
               AND flowgate.ds_expired(s)
             LIMIT 1000"
        )
        .fetch_all(&self.pool)
        .await?;
        for &id in &ids {
            sqlx::query!(r#"SELECT flowgate.ds_drop($1, false) AS "dropped: ()""#, id)
                .execute(&self.pool)
                .await?;
        }
        Ok(ids.len())
    }
}
