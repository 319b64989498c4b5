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
    /// The statement over the tables that hold a run's rows (`$n`, its place in the list).
    macro_rules! count_expired_in {
        ($($n:literal $table:literal),*) => {
            retention_query!(
                query_as,
                [TableCount],
                r#"WITH expired AS MATERIALIZED (SELECT w.id FROM flowgate.workflows w WHERE "#
                    + expired
                    + r#"), counts (n, "table", rows, bytes) AS (
                       SELECT 1, 'workflows', count(*), sum(pg_column_size(t.*))
                       FROM flowgate.workflows t WHERE t.id IN (SELECT id FROM expired)"#
                $(
                    + " UNION ALL SELECT " + $n + ", '" + $table
                    + "', count(*), sum(pg_column_size(t.*)) FROM flowgate." + $table
                    + " t WHERE t.workflow_id IN (SELECT id FROM expired)"
                )*
                    + " UNION ALL SELECT 9, 'messages (consumed, live runs)', count(*),
                       sum(pg_column_size(m.*))
                       FROM flowgate.messages m JOIN flowgate.workflows w ON w.id = m.workflow_id
                       WHERE " + consumed + r#" AND m.workflow_id NOT IN (SELECT id FROM expired))
                   SELECT "table" AS "table!", rows AS "rows!", coalesce(bytes, 0)::bigint AS "bytes!"
                   FROM counts ORDER BY n"#;
                floor,
                default
            )
        };
    }
    Ok(count_expired_in!(
        "2" "steps",
        "3" "events",
        "4" "messages",
        "5" "streams",
        "6" "stream_records",
        "7" "approval_uses",
        "8" "message_keys"
    )
    .fetch_all(conn)
    .await?)
}
