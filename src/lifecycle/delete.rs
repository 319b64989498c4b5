//! The deletes of a sweep, each transaction bounded in rows.
//!
//! A run's stream records go first, in chunks taken from the top of each stream down, so a
//! reader still on the run sees a shorter but gapless prefix (never a hole); then its steps,
//! events and messages in chunks; then, in one small transaction, the run row with its
//! streams, approval uses and kept idempotency keys, and a status note per run and a stream
//! note per stream so that readers hear it is gone.

use sqlx::{Connection, PgConnection};

use super::sweep::{Pacer, SweepReport, CONSUMED};

/// Runs taken per round of a sweep.
pub const RUNS_PER_BATCH: i64 = 200;

/// A range `[lo, hi)` of one stream's offsets.
struct Chunk {
    run: String,
    key: String,
    lo: i64,
    hi: i64,
}

/// Cuts every stream of `runs` into top-down chunks of at most `batch` offsets.
async fn chunks(
    conn: &mut PgConnection,
    runs: &[String],
    batch: i64,
) -> Result<Vec<Chunk>, sqlx::Error> {
    let streams: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT workflow_id, key, next_offset FROM flowgate.streams
         WHERE workflow_id = ANY($1) ORDER BY workflow_id, key",
    )
    .bind(runs)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for (run, key, next) in streams {
        let mut hi = next;
        while hi > 0 {
            let lo = (hi - batch).max(0);
            out.push(Chunk {
                run: run.clone(),
                key: key.clone(),
                lo,
                hi,
            });
            hi = lo;
        }
    }
    Ok(out)
}

/// Deletes the stream records of `runs` in transactions of at most `batch` rows.
async fn records(
    conn: &mut PgConnection,
    runs: &[String],
    batch: i64,
    pacer: &mut Pacer,
) -> Result<u64, sqlx::Error> {
    let all = chunks(conn, runs, batch).await?;
    let mut deleted = 0;
    let mut i = 0;
    while i < all.len() && !pacer.stopped() {
        // Pack consecutive chunks (order kept: top-down within each stream) up to `batch`.
        let (mut w, mut k, mut lo, mut hi) = (vec![], vec![], vec![], vec![]);
        let mut rows = 0;
        while i < all.len() && (rows == 0 || rows + all[i].hi - all[i].lo <= batch) {
            let c = &all[i];
            rows += c.hi - c.lo;
            w.push(c.run.clone());
            k.push(c.key.clone());
            lo.push(c.lo);
            hi.push(c.hi);
            i += 1;
        }
        pacer.begin();
        deleted += sqlx::query(
            r#"DELETE FROM flowgate.stream_records r
               USING unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS c(w, k, lo, hi)
               WHERE r.workflow_id = c.w AND r.key = c.k AND r."offset" >= c.lo AND r."offset" < c.hi"#,
        )
        .bind(&w)
        .bind(&k)
        .bind(&lo)
        .bind(&hi)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        pacer.pause().await;
    }
    Ok(deleted)
}

/// Deletes the rows of `table` that belong to `runs`, `batch` at a time.
async fn owned(
    conn: &mut PgConnection,
    table: &str,
    runs: &[String],
    batch: i64,
    pacer: &mut Pacer,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM flowgate.{table} WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM flowgate.{table} WHERE workflow_id = ANY($1) LIMIT $2))"
    );
    let mut deleted = 0;
    loop {
        pacer.begin();
        let n = sqlx::query(&sql)
            .bind(runs)
            .bind(batch)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        deleted += n;
        if n < batch as u64 || pacer.stopped() {
            return Ok(deleted);
        }
        pacer.pause().await;
    }
}

/// Removes expired runs `ids` with everything they own; returns the runs removed (a run
/// locked by live traffic is skipped and left for the next sweep, and at shutdown the sweep
/// ends between transactions).
pub(crate) async fn runs(
    conn: &mut PgConnection,
    ids: &[String],
    batch: i64,
    pacer: &mut Pacer,
    report: &mut SweepReport,
) -> Result<u64, sqlx::Error> {
    report.add("stream_records", records(conn, ids, batch, pacer).await?);
    for table in ["steps", "events", "messages"] {
        report.add(table, owned(conn, table, ids, batch, pacer).await?);
    }
    if pacer.stopped() {
        // Shutting down: the rows left are deleted by the next sweep.
        return Ok(0);
    }
    let mut tx = conn.begin().await?;
    let locked: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM flowgate.workflows WHERE id = ANY($1)
           AND status IN ('SUCCESS', 'ERROR', 'CANCELLED')
         FOR UPDATE SKIP LOCKED",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    // Whatever was written since the chunks above (a straggling append) goes here.
    for table in [
        "stream_records",
        "steps",
        "events",
        "messages",
        "approval_uses",
        "message_keys",
    ] {
        let n = sqlx::query(&format!(
            "DELETE FROM flowgate.{table} WHERE workflow_id = ANY($1)"
        ))
        .bind(&locked)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        report.add(table, n);
    }
    let streams: Vec<(String, String)> = sqlx::query_as(
        "DELETE FROM flowgate.streams WHERE workflow_id = ANY($1) RETURNING workflow_id, key",
    )
    .bind(&locked)
    .fetch_all(&mut *tx)
    .await?;
    report.add("streams", streams.len() as u64);
    let n = sqlx::query("DELETE FROM flowgate.workflows WHERE id = ANY($1)")
        .bind(&locked)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    report.add("workflows", n);
    let (w, k): (Vec<String>, Vec<String>) = streams.into_iter().unzip();
    sqlx::query(
        "SELECT flowgate.notify('w', id, '', 0) FROM unnest($1::text[]) AS id
         UNION ALL
         SELECT flowgate.notify('s', w, k, 0) FROM unnest($2::text[], $3::text[]) AS s(w, k)",
    )
    .bind(&locked)
    .bind(&w)
    .bind(&k)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Removes up to `batch` messages consumed longer ago than their run's retention, keeping
/// the idempotency keys they carried; returns (messages removed, keys kept).
pub(crate) async fn consumed_messages(
    conn: &mut PgConnection,
    floor: f64,
    default: f64,
    batch: i64,
) -> Result<(u64, u64), sqlx::Error> {
    let (gone, kept): (i64, i64) = sqlx::query_as(&format!(
        "WITH doomed AS (
             SELECT m.id FROM flowgate.messages m
             JOIN flowgate.workflows w ON w.id = m.workflow_id
             WHERE {CONSUMED}
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
         SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM kept)"
    ))
    .bind(floor)
    .bind(default)
    .bind(batch)
    .fetch_one(&mut *conn)
    .await?;
    Ok((gone as u64, kept as u64))
}

/// External PENDING runs not written for `idle` seconds, checked a page at a time.
const IDLE_PAGE: i64 = 500;

/// Ends (CANCELLED, `updated_at` = last write) every external run idle for `idle` seconds;
/// returns how many.
pub(crate) async fn end_idle(conn: &mut PgConnection, idle: f64) -> Result<u64, sqlx::Error> {
    let mut after: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
    let mut ended = 0;
    loop {
        let page: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT w.id, w.updated_at FROM flowgate.workflows w
             WHERE w.external AND w.status = 'PENDING' AND w.retention_secs IS DISTINCT FROM 0
               AND w.updated_at < now() - make_interval(secs => $1::float8)
               AND ($2::timestamptz IS NULL OR (w.updated_at, w.id) > ($2, $3))
             ORDER BY w.updated_at, w.id LIMIT $4",
        )
        .bind(idle)
        .bind(after.as_ref().map(|a| a.0))
        .bind(after.as_ref().map(|a| a.1.clone()))
        .bind(IDLE_PAGE)
        .fetch_all(&mut *conn)
        .await?;
        if page.is_empty() {
            return Ok(ended);
        }
        let ids: Vec<String> = page.iter().map(|p| p.0.clone()).collect();
        let mut tx = conn.begin().await?;
        let done: Vec<String> = sqlx::query_scalar(
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
        )
        .bind(&ids)
        .bind(idle)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("SELECT flowgate.notify('w', id, '', 0) FROM unnest($1::text[]) AS id")
            .bind(&done)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        ended += done.len() as u64;
        if (page.len() as i64) < IDLE_PAGE {
            return Ok(ended);
        }
        after = page.last().map(|(id, at)| (*at, id.clone()));
    }
}
