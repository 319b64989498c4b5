//! The deletes of a sweep, each transaction bounded in rows.
//!
//! A run's stream records go first, in chunks taken from the top of each stream down, so a
//! reader still on the run sees a shorter but gapless prefix (never a hole); then its steps,
//! events and messages in chunks; then, in one small transaction, the run row with its
//! streams, approval uses and kept idempotency keys, and a status note per run and a stream
//! note per stream so that readers hear it is gone. The statements are in
//! [`crate::store::retention`].

use sqlx::PgConnection;

use super::sweep::{Pacer, SweepReport};
use crate::error::StoreError;
use crate::store::retention::delete::{self as store, Chunked, RecordRanges};
use crate::store::retention::idle;

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
) -> Result<Vec<Chunk>, StoreError> {
    let mut out = Vec::new();
    for s in store::stream_ends(conn, runs).await? {
        let mut hi = s.next_offset;
        while hi > 0 {
            let lo = (hi - batch).max(0);
            out.push(Chunk {
                run: s.workflow_id.clone(),
                key: s.key.clone(),
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
) -> Result<u64, StoreError> {
    let all = chunks(conn, runs, batch).await?;
    let mut deleted = 0;
    let mut i = 0;
    while i < all.len() && !pacer.stopped() {
        // Pack consecutive chunks (order kept: top-down within each stream) up to `batch`.
        let mut ranges = RecordRanges::default();
        let mut rows = 0;
        while i < all.len() && (rows == 0 || rows + all[i].hi - all[i].lo <= batch) {
            let c = &all[i];
            rows += c.hi - c.lo;
            ranges.runs.push(c.run.clone());
            ranges.keys.push(c.key.clone());
            ranges.lo.push(c.lo);
            ranges.hi.push(c.hi);
            i += 1;
        }
        pacer.begin();
        deleted += store::delete_records(conn, &ranges).await?;
        pacer.pause().await;
    }
    Ok(deleted)
}

/// Deletes the rows of `table` that belong to `runs`, `batch` at a time.
async fn owned(
    conn: &mut PgConnection,
    table: Chunked,
    runs: &[String],
    batch: i64,
    pacer: &mut Pacer,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        pacer.begin();
        let n = store::delete_chunk(conn, table, runs, batch).await?;
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
) -> Result<u64, StoreError> {
    report.add("stream_records", records(conn, ids, batch, pacer).await?);
    for table in Chunked::ALL {
        report.add(table.table(), owned(conn, table, ids, batch, pacer).await?);
    }
    if pacer.stopped() {
        // Shutting down: the rows left are deleted by the next sweep.
        return Ok(0);
    }
    let deleted = store::delete_runs(conn, ids).await?;
    for (table, n) in deleted.rows {
        report.add(table, n);
    }
    Ok(deleted.runs)
}

/// External PENDING runs not written for `idle` seconds, checked a page at a time.
const IDLE_PAGE: i64 = 500;

/// Ends (CANCELLED, `updated_at` = last write) every external run idle for `idle` seconds;
/// returns how many.
pub(crate) async fn end_idle(conn: &mut PgConnection, idle: f64) -> Result<u64, StoreError> {
    let mut after = None;
    let mut ended = 0;
    loop {
        let page = idle::idle_candidates(conn, idle, after, IDLE_PAGE).await?;
        if page.is_empty() {
            return Ok(ended);
        }
        let ids: Vec<String> = page.iter().map(|p| p.0.clone()).collect();
        ended += idle::end_idle(conn, &ids, idle).await?.len() as u64;
        if (page.len() as i64) < IDLE_PAGE {
            return Ok(ended);
        }
        after = page.last().map(|(id, at)| (*at, id.clone()));
    }
}
