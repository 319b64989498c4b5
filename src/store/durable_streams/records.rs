//! A durable stream's records (`flowgate.ds_records`): reads that stitch a fork chain, the
//! rows a creation inserts, the hub's page read, and the sliding-TTL read mark
//! (`flowgate.ds_reads`). Appends run in [`super::batch`].

use bytes::Bytes;
use sqlx::{PgConnection, PgExecutor};

use crate::error::StoreError;
use crate::store::{Store, StreamPage};

/// Most bytes in one catch-up response (one row is always returned, whatever its size).
pub const CHUNK_BYTES: i64 = 1 << 20;

/// Most rows in one catch-up response.
pub const CHUNK_ROWS: i64 = 1000;

/// Reads rows `after+1 ..= upto` of stream `id` through its fork chain, in order, stopping
/// after `max_rows` rows or once [`CHUNK_BYTES`] are reached (at least one row).
async fn read_chain<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    after: i64,
    upto: i64,
    max_rows: i64,
) -> Result<Vec<(i64, Bytes)>, StoreError> {
    let rows = sqlx::query!(
        r#"WITH RECURSIVE chain (id, source_id, lo, hi) AS (
               SELECT id, source_id, coalesce(fork_offset, 0), $3::bigint
               FROM flowgate.ds_streams WHERE id = $1
               UNION ALL
               SELECT s.id, s.source_id, coalesce(s.fork_offset, 0), c.lo
               FROM chain c JOIN flowgate.ds_streams s ON s.id = c.source_id
           )
           SELECT seq AS "seq!", payload AS "payload!" FROM (
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
        id,
        after,
        upto,
        max_rows,
        CHUNK_BYTES,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.seq, Bytes::from(r.payload)))
        .collect())
}

/// Reads rows `after+1 ..= upto` of stream `id` through its fork chain in the caller's
/// transaction, in order, stopping after `max_rows` rows or once [`CHUNK_BYTES`] are
/// reached (at least one row).
pub async fn read_rows(
    conn: &mut PgConnection,
    id: i64,
    after: i64,
    upto: i64,
    max_rows: i64,
) -> Result<Vec<(i64, Bytes)>, StoreError> {
    read_chain(conn, id, after, upto, max_rows).await
}

/// Inserts `rows` into stream `id` as offsets `after+1 ..`.
pub async fn insert_rows(
    conn: &mut PgConnection,
    id: i64,
    after: i64,
    rows: &[Bytes],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
    // Borrowed payloads have no checked Rust mapping for bytea[]: the type is stated.
    sqlx::query!(
        "INSERT INTO flowgate.ds_records (stream_id, seq, payload)
         SELECT $1, $2 + t.ord, t.p FROM unnest($3::bytea[]) WITH ORDINALITY AS t(p, ord)",
        id,
        after,
        &rows as &[&[u8]],
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Rows after offset `after` up to `upto`, one catch-up chunk.
    pub async fn ds_read(
        &self,
        id: i64,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(i64, Bytes)>, StoreError> {
        read_chain(&self.pool, id, after, upto, CHUNK_ROWS).await
    }

    /// The hub's read of durable stream `id` (hub offsets are row numbers minus one). A
    /// stream that is gone, deleted or expired reads as closed and empty, which ends every
    /// follower.
    pub async fn ds_page(&self, id: i64, from: i64, limit: i64) -> Result<StreamPage, StoreError> {
        let meta = sqlx::query!(
            r#"SELECT s.tail, s.closed, s.deleted, flowgate.ds_expired(s) AS "expired!"
               FROM flowgate.ds_streams s WHERE s.id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        let (tail, closed) = match meta {
            Some(m) if !m.deleted && !m.expired => (m.tail, m.closed),
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
            read_chain(&self.pool, id, from, tail, limit)
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
        sqlx::query!(
            "INSERT INTO flowgate.ds_reads (stream_id, read_at) VALUES ($1, now())
             ON CONFLICT (stream_id) DO UPDATE SET read_at = now()
             WHERE flowgate.ds_reads.read_at < now() - interval '100 milliseconds'",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
