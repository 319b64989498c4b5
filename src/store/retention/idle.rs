//! Idle external runs: PENDING runs written from outside (the producer API or SQL) that no
//! one has written to for the idle period. A sweep ends them (CANCELLED) before their
//! retention can apply.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use crate::error::StoreError;

/// A page of external PENDING runs (not kept forever) last updated more than `idle` seconds
/// ago, after `after` (`(updated_at, id)`) in that order: `(id, updated_at)`, at most
/// `limit`. `updated_at` only narrows the search: [`end_idle`] checks the last write.
pub async fn idle_candidates(
    conn: &mut PgConnection,
    idle: f64,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let (at, id) = after.unzip();
    let rows = sqlx::query!(
        "SELECT w.id, w.updated_at FROM flowgate.workflows w
         WHERE w.external AND w.status = 'PENDING' AND w.retention_secs IS DISTINCT FROM 0
           AND w.updated_at < now() - make_interval(secs => $1::float8)
           AND ($2::timestamptz IS NULL OR (w.updated_at, w.id) > ($2, $3))
         ORDER BY w.updated_at, w.id LIMIT $4",
        idle,
        at,
        id,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.updated_at)).collect())
}

/// Ends, in one transaction, those of `ids` still external and PENDING whose last write is
/// older than `idle` seconds and that no one else has locked: CANCELLED with
/// `updated_at` = that last write and an `idle` error, each notified on its status topic.
/// Returns the runs ended.
pub async fn end_idle(
    conn: &mut PgConnection,
    ids: &[String],
    idle: f64,
) -> Result<Vec<String>, StoreError> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query_scalar!(
        "WITH idle AS (
             SELECT w.id, flowgate.last_write(w.id) AS last FROM flowgate.workflows w
             WHERE w.id = ANY($1) AND w.external AND w.status = 'PENDING'
             FOR UPDATE SKIP LOCKED)
         UPDATE flowgate.workflows w
         SET status = 'CANCELLED', updated_at = i.last,
             error = jsonb_build_object('code', 'idle',
                 'message', 'ended by the server: no write for ' || $2::float8::text || ' seconds')
         FROM idle i
         WHERE w.id = i.id AND i.last < now() - make_interval(secs => $2::float8)
         RETURNING w.id",
        ids,
        idle
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "SELECT flowgate.notify('w', id, '', 0) FROM unnest($1::text[]) AS id",
        &done
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// How many external runs a sweep would end now for being idle `idle` seconds.
pub async fn count_idle(conn: &mut PgConnection, idle: f64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM flowgate.workflows w
           WHERE w.external AND w.status = 'PENDING' AND w.retention_secs IS DISTINCT FROM 0
             AND flowgate.last_write(w.id) < now() - make_interval(secs => $1::float8)"#,
        idle
    )
    .fetch_one(conn)
    .await?)
}
