//! Reads about the server rather than about runs: the primary's WAL position and snapshot
//! (the replica fence), a standby's recovery and replay position, and the workflow counts
//! scraped into `/metrics`.

use super::Store;
use crate::error::StoreError;

/// What a primary had committed at one moment: a WAL position and the snapshot taken just
/// before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFence {
    /// A WAL position at or past the commit record of every transaction in `snapshot`.
    pub lsn: i64,
    /// The snapshot (`xmin:xmax:xip`), as text.
    pub snapshot: String,
}

impl Store {
    /// The primary's current WAL insert position, in bytes.
    pub async fn wal_position(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS "lsn!""#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The primary's WAL position with its snapshot. The snapshot is taken before the WAL
    /// position is read, so every transaction it sees committed below that position.
    pub async fn wal_fence(&self) -> Result<WalFence, StoreError> {
        Ok(sqlx::query_as!(
            WalFence,
            r#"SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS "lsn!",
                pg_current_snapshot()::text AS "snapshot!""#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Whether this server is in recovery (a standby), and the WAL position it has replayed
    /// (0 if none).
    pub async fn replay_position(&self) -> Result<(bool, i64), StoreError> {
        let row = sqlx::query!(
            r#"SELECT pg_is_in_recovery() AS "recovering!",
                coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0) AS "replayed!""#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.recovering, row.replayed))
    }

    /// How many runs have each status, by status.
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT status, count(*) AS "count!" FROM flowgate.workflows
               GROUP BY status ORDER BY status"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.status, r.count)).collect())
    }

    /// How many runs wait in each queue (`""` for none), by queue.
    pub async fn queue_depths(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT coalesce(queue, '') AS "queue!", count(*) AS "count!" FROM flowgate.workflows
               WHERE status = 'ENQUEUED' GROUP BY 1 ORDER BY 1"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.queue, r.count)).collect())
    }
}
