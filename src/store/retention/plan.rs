//! What a sweep would remove now, counted without deleting: rows and bytes
//! (`pg_column_size` of each row, payloads included) per table.

use sqlx::PgConnection;

use crate::error::StoreError;

/// Rows and bytes of one table that a sweep would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// Table (or `messages (consumed, live runs)`).
    pub table: String,
    /// Rows.
    pub rows: i64,
    /// Bytes of those rows.
    pub bytes: i64,
}

/// Executors whose last heartbeat is older than `secs`: (rows, bytes).
pub async fn count_dead_executors(
    conn: &mut PgConnection,
    secs: f64,
) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "rows!", coalesce(sum(pg_column_size(e.*)), 0)::bigint AS "bytes!"
           FROM flowgate.executors e
           WHERE heartbeat_at < now() - make_interval(secs => $1::float8)"#,
        secs
    )
    .fetch_one(conn)
    .await?;
    Ok((row.rows, row.bytes))
}

/// The rows of expired runs (module doc of [`super`]: `floor` is `$1`, `default` `$2`) in
/// every table that holds them, then the consumed messages past retention of runs that are
/// not expired (`messages (consumed, live runs)`), in that order.
pub async fn count_expired(
    conn: &mut PgConnection,
    floor: f64,
    default: f64,
) -> Result<Vec<TableCount>, StoreError> {
    Ok(sqlx::query_as!(
        TableCount,
        r#"WITH expired AS MATERIALIZED (
               SELECT w.id FROM flowgate.workflows w
               WHERE w.status IN ('SUCCESS', 'ERROR', 'CANCELLED')
                 AND w.retention_secs IS DISTINCT FROM 0
                 AND w.updated_at < now() - make_interval(secs => $1::float8)
                 AND ($2::float8 > 0 OR w.retention_secs IS NOT NULL)
                 AND w.updated_at < now() - make_interval(secs => coalesce(w.retention_secs::float8, $2::float8))
                 AND NOT EXISTS (SELECT 1 FROM flowgate.workflows p
                                 WHERE p.id = w.parent_id AND p.status IN ('ENQUEUED', 'PENDING'))),
           counts (n, "table", rows, bytes) AS (
               SELECT 1, 'workflows', count(*), sum(pg_column_size(t.*))
               FROM flowgate.workflows t WHERE t.id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 2, 'steps', count(*), sum(pg_column_size(t.*))
               FROM flowgate.steps t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 3, 'events', count(*), sum(pg_column_size(t.*))
               FROM flowgate.events t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 4, 'messages', count(*), sum(pg_column_size(t.*))
               FROM flowgate.messages t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 5, 'streams', count(*), sum(pg_column_size(t.*))
               FROM flowgate.streams t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 6, 'stream_records', count(*), sum(pg_column_size(t.*))
               FROM flowgate.stream_records t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 7, 'approval_uses', count(*), sum(pg_column_size(t.*))
               FROM flowgate.approval_uses t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 8, 'message_keys', count(*), sum(pg_column_size(t.*))
               FROM flowgate.message_keys t WHERE t.workflow_id IN (SELECT id FROM expired)
               UNION ALL
               SELECT 9, 'messages (consumed, live runs)', count(*), sum(pg_column_size(m.*))
               FROM flowgate.messages m JOIN flowgate.workflows w ON w.id = m.workflow_id
               WHERE m.consumed_at < now() - make_interval(secs => $1::float8)
                 AND w.retention_secs IS DISTINCT FROM 0
                 AND ($2::float8 > 0 OR w.retention_secs IS NOT NULL)
                 AND m.consumed_at < now() - make_interval(secs => coalesce(w.retention_secs::float8, $2::float8))
                 AND m.workflow_id NOT IN (SELECT id FROM expired))
           SELECT "table" AS "table!", rows AS "rows!", coalesce(bytes, 0)::bigint AS "bytes!"
           FROM counts ORDER BY n"#,
        floor,
        default
    )
    .fetch_all(conn)
    .await?)
}
