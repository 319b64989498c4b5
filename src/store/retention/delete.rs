//! The deletes of a sweep: a run's stream records in offset ranges, its steps, events and
//! messages in bounded chunks, then the run itself with what is left of it; and consumed
//! messages past their run's retention.

use sqlx::{Connection, PgConnection};

use crate::error::StoreError;

/// One stream of a run and its next offset (its records are `[0, next_offset)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// Run id.
    pub workflow_id: String,
    /// Stream key.
    pub key: String,
    /// The offset the next record would take.
    pub next_offset: i64,
}

/// The streams of `runs`, by run and key.
pub async fn stream_ends(
    conn: &mut PgConnection,
    runs: &[String],
) -> Result<Vec<StreamEnd>, StoreError> {
    Ok(sqlx::query_as!(
        StreamEnd,
        "SELECT workflow_id, key, next_offset FROM flowgate.streams
         WHERE workflow_id = ANY($1) ORDER BY workflow_id, key",
        runs
    )
    .fetch_all(conn)
    .await?)
}

/// Offset ranges `[lo, hi)` of streams, as parallel arrays (run, key, lo, hi).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRanges {
    /// Run ids.
    pub runs: Vec<String>,
    /// Stream keys.
    pub keys: Vec<String>,
    /// First offsets.
    pub lo: Vec<i64>,
    /// Ends (exclusive).
    pub hi: Vec<i64>,
}

/// Deletes the stream records in `ranges`; returns how many.
pub async fn delete_records(
    conn: &mut PgConnection,
    ranges: &RecordRanges,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"DELETE FROM flowgate.stream_records r
           USING unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS c(w, k, lo, hi)
           WHERE r.workflow_id = c.w AND r.key = c.k AND r."offset" >= c.lo AND r."offset" < c.hi"#,
        &ranges.runs,
        &ranges.keys,
        &ranges.lo,
        &ranges.hi
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// A table deleted from in chunks, before its runs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// `flowgate.steps`.
    Steps,
    /// `flowgate.events`.
    Events,
    /// `flowgate.messages`.
    Messages,
}

impl Chunked {
    /// In the order a sweep deletes them.
    pub const ALL: [Chunked; 3] = [Chunked::Steps, Chunked::Events, Chunked::Messages];

    /// The table's name.
    pub fn table(self) -> &'static str {
        match self {
            Chunked::Steps => "steps",
            Chunked::Events => "events",
            Chunked::Messages => "messages",
        }
    }
}

/// Deletes up to `limit` rows of `table` that belong to `runs`; returns how many.
pub async fn delete_chunk(
    conn: &mut PgConnection,
    table: Chunked,
    runs: &[String],
    limit: i64,
) -> Result<u64, StoreError> {
    /// Deletes up to `limit` rows of `runs` in table `$table` of the flowgate schema.
    macro_rules! delete_chunk_of {
        ($table:literal) => {
            sqlx::query!(
                "DELETE FROM flowgate."
                    + $table
                    + " WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM flowgate."
                    + $table
                    + " WHERE workflow_id = ANY($1) LIMIT $2))",
                runs,
                limit
            )
            .execute(conn)
            .await?
        };
    }
    let done = match table {
        Chunked::Steps => delete_chunk_of!("steps"),
        Chunked::Events => delete_chunk_of!("events"),
        Chunked::Messages => delete_chunk_of!("messages"),
    };
    Ok(done.rows_affected())
}

/// What [`delete_runs`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunsDeleted {
    /// Runs removed.
    pub runs: u64,
    /// Rows deleted per table (the runs included, as `workflows`), in deletion order.
    pub rows: Vec<(&'static str, u64)>,
}

/// Removes, in one transaction, the finished runs among `ids` that no one else has locked,
/// with every row they still own, and notifies each run's status and stream topics (so
/// readers hear they are gone).
pub async fn delete_runs(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<RunsDeleted, StoreError> {
    let mut tx = conn.begin().await?;
    let locked = sqlx::query_scalar!(
        "SELECT id FROM flowgate.workflows WHERE id = ANY($1)
           AND status IN ('SUCCESS', 'ERROR', 'CANCELLED')
         FOR UPDATE SKIP LOCKED",
        ids
    )
    .fetch_all(&mut *tx)
    .await?;
    // Whatever was written since the chunks (a straggling append) goes here.
    let mut deleted = delete_owned(&mut tx, &locked).await?;
    let streams = sqlx::query!(
        "DELETE FROM flowgate.streams WHERE workflow_id = ANY($1) RETURNING workflow_id, key",
        &locked
    )
    .fetch_all(&mut *tx)
    .await?;
    deleted.push(("streams", streams.len() as u64));
    let runs = sqlx::query!("DELETE FROM flowgate.workflows WHERE id = ANY($1)", &locked)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    deleted.push(("workflows", runs));
    let (w, k): (Vec<String>, Vec<String>) =
        streams.into_iter().map(|s| (s.workflow_id, s.key)).unzip();
    sqlx::query!(
        "SELECT flowgate.notify('w', id, '', 0) FROM unnest($1::text[]) AS id
         UNION ALL
         SELECT flowgate.notify('s', w, k, 0) FROM unnest($2::text[], $3::text[]) AS s(w, k)",
        &locked,
        &w,
        &k
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RunsDeleted {
        runs,
        rows: deleted,
    })
}

/// Deletes every row `runs` own but their streams; returns the rows deleted per table.
async fn delete_owned(
    conn: &mut PgConnection,
    runs: &[String],
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    /// Deletes the rows of `runs` in table `$table` of the flowgate schema.
    macro_rules! delete_of_runs {
        ($table:literal) => {
            (
                $table,
                sqlx::query!(
                    "DELETE FROM flowgate." + $table + " WHERE workflow_id = ANY($1)",
                    runs
                )
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            )
        };
    }
    Ok(vec![
        delete_of_runs!("stream_records"),
        delete_of_runs!("steps"),
        delete_of_runs!("events"),
        delete_of_runs!("messages"),
        delete_of_runs!("approval_uses"),
        delete_of_runs!("message_keys"),
    ])
}

/// Removes up to `limit` messages consumed longer ago than their run's retention (module
/// doc: `floor` is `$1`, `default` `$2`), keeping the idempotency keys they carried in
/// `message_keys`; returns (messages removed, keys kept).
pub async fn delete_consumed_messages(
    conn: &mut PgConnection,
    floor: f64,
    default: f64,
    limit: i64,
) -> Result<(u64, u64), StoreError> {
    let row = retention_query!(
        query,
        [],
        "WITH doomed AS (
               SELECT m.id FROM flowgate.messages m
               JOIN flowgate.workflows w ON w.id = m.workflow_id
               WHERE " + consumed + r#"
               ORDER BY m.consumed_at LIMIT $3
               FOR UPDATE OF m SKIP LOCKED),
           gone AS (
               DELETE FROM flowgate.messages m USING doomed d WHERE m.id = d.id
               RETURNING m.workflow_id, m.idempotency_key, m.id, m.topic, m.body),
           kept AS (
               INSERT INTO flowgate.message_keys
                   (workflow_id, idempotency_key, msg_id, topic, body_md5)
               SELECT workflow_id, idempotency_key, id, topic, md5(body::text) FROM gone
               WHERE idempotency_key IS NOT NULL
               ON CONFLICT DO NOTHING RETURNING 1)
           SELECT (SELECT count(*) FROM gone) AS "gone!", (SELECT count(*) FROM kept) AS "kept!""#;
        floor,
        default,
        limit
    )
    .fetch_one(conn)
    .await?;
    Ok((row.gone as u64, row.kept as u64))
}
