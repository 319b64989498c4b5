//! One sweep: under the cluster-wide advisory lock, prune dead executors, end idle external
//! runs, remove expired runs in bounded batches, and remove old consumed messages.
//!
//! The sweep runs on its own connection (never a pooled one, so the session lock can never
//! outlive the sweep in the pool) with a short `lock_timeout`: it gives way to live traffic
//! instead of waiting behind it. It never touches an ENQUEUED or PENDING run, except an
//! external run silent for longer than the idle period, which it first ends (CANCELLED).
//! What counts as expired is spelled out in [`crate::store::retention`]: a finished run
//! once its own retention (or the default) has passed and its parent has finished.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::delete;
use super::RetentionConfig;
use crate::error::StoreError;
use crate::metrics::Metrics;
use crate::store::retention;

/// The advisory lock key held by the one sweeper at a time (`'flowgate'` in ASCII, + 1).
pub const GC_LOCK: i64 = 0x666c_6f77_6761_7401;

/// Executors silent for this long are pruned (runs of silent executors are taken over
/// within seconds; the row only says when it last beat).
pub const EXECUTOR_PRUNE_SECS: f64 = 3600.0;

/// Whether to wait for another sweeper to finish or to skip this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Skip when another process is sweeping (the background sweeper).
    Try,
    /// Wait for it, then sweep what is left (`flowgate gc`).
    Wait,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Rows deleted per table.
    pub deleted: BTreeMap<String, u64>,
    /// External runs ended (CANCELLED) for being idle.
    pub idle_ended: u64,
    /// Idempotency keys kept from removed consumed messages (they stay valid).
    pub message_keys_kept: u64,
    /// True if another process held the sweep lock (nothing was done).
    pub skipped: bool,
    /// Wall time of the sweep in seconds.
    pub seconds: f64,
}

impl SweepReport {
    /// Adds `n` deleted rows of `table`.
    pub fn add(&mut self, table: &str, n: u64) {
        *self.deleted.entry(table.to_string()).or_default() += n;
    }

    /// Deleted rows of `table`.
    pub fn get(&self, table: &str) -> u64 {
        self.deleted.get(table).copied().unwrap_or(0)
    }
}

/// Runs sweeps against one database.
#[derive(Clone)]
pub struct Sweeper {
    pub(crate) pool: PgPool,
    pub(crate) cfg: RetentionConfig,
    metrics: Option<Metrics>,
}

impl Sweeper {
    /// A sweeper on `pool` with these settings; `metrics` counts what it deletes.
    pub fn new(pool: PgPool, cfg: RetentionConfig, metrics: Option<Metrics>) -> Self {
        Sweeper { pool, cfg, metrics }
    }

    /// A connection of its own (not from the pool) with a short lock timeout.
    pub(crate) async fn connect(&self) -> Result<PgConnection, StoreError> {
        let opts = (*self.pool.connect_options())
            .clone()
            .application_name("flowgate-gc");
        Ok(PgConnection::connect_with(&opts).await?)
    }

    /// One sweep. Stops between transactions when `stop` fires.
    pub async fn run_once(
        &self,
        mode: LockMode,
        stop: &CancellationToken,
    ) -> Result<SweepReport, StoreError> {
        let started = Instant::now();
        let mut conn = self.connect().await?;
        let locked = match mode {
            LockMode::Try => retention::try_advisory_lock(&mut conn, GC_LOCK).await?,
            LockMode::Wait => {
                retention::advisory_lock(&mut conn, GC_LOCK).await?;
                true
            }
        };
        let mut report = SweepReport {
            skipped: !locked,
            ..Default::default()
        };
        if locked {
            retention::set_short_lock_timeout(&mut conn).await?;
            let swept = self.phases(&mut conn, &mut report, stop).await;
            // Closing the connection releases the lock even if the unlock fails.
            let _ = retention::advisory_unlock(&mut conn, GC_LOCK).await;
            swept?;
        }
        let _ = conn.close().await;
        report.seconds = started.elapsed().as_secs_f64();
        if let (Some(m), false) = (&self.metrics, report.skipped) {
            m.gc_sweep_seconds.observe(report.seconds);
            for (table, n) in &report.deleted {
                m.gc_rows_deleted
                    .with_label_values(&[table.as_str()])
                    .inc_by(*n);
            }
        }
        Ok(report)
    }

    async fn phases(
        &self,
        conn: &mut PgConnection,
        report: &mut SweepReport,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let n = retention::prune_executors(conn, EXECUTOR_PRUNE_SECS).await?;
        report.add("executors", n);
        if self.cfg.idle_secs() > 0.0 {
            report.idle_ended = delete::end_idle(conn, self.cfg.idle_secs()).await?;
        }
        let Some(floor) = self.floor(conn).await? else {
            return Ok(());
        };
        let def = self.cfg.retention_secs();
        let mut pacer = Pacer::new(&self.cfg, stop.clone());
        while !stop.is_cancelled() {
            let ids = retention::expired_runs(conn, floor, def, delete::RUNS_PER_BATCH).await?;
            if ids.is_empty() {
                break;
            }
            let removed = delete::runs(conn, &ids, self.cfg.batch(), &mut pacer, report).await?;
            if removed == 0 {
                // Every candidate is locked by someone else: try again next sweep.
                break;
            }
        }
        while !stop.is_cancelled() {
            let (gone, keys) =
                retention::delete::delete_consumed_messages(conn, floor, def, self.cfg.batch())
                    .await?;
            report.add("messages", gone);
            report.message_keys_kept += keys;
            if gone < self.cfg.batch() as u64 {
                break;
            }
            pacer.pause().await;
        }
        Ok(())
    }

    /// The shortest retention in force (the default or any run's own), `None` if every
    /// retention is "forever".
    pub(crate) async fn floor(&self, conn: &mut PgConnection) -> Result<Option<f64>, StoreError> {
        let def = self.cfg.retention_secs();
        let own = retention::min_own_retention(conn).await?.map(|s| s as f64);
        Ok(match (def > 0.0, own) {
            (true, Some(o)) => Some(def.min(o)),
            (true, None) => Some(def),
            (false, o) => o,
        })
    }
}

/// Spreads transactions over time: after each one, waits at least the configured pause and
/// at least `factor` times as long as the transaction took (so a sweep keeps its connection
/// busy at most the configured share of the time).
pub(crate) struct Pacer {
    min: Duration,
    factor: f64,
    last: Instant,
    stop: CancellationToken,
}

impl Pacer {
    pub(crate) fn new(cfg: &RetentionConfig, stop: CancellationToken) -> Self {
        Pacer {
            min: cfg.gc_pause,
            factor: cfg.pause_factor(),
            last: Instant::now(),
            stop,
        }
    }

    /// True once the sweep should stop (shutdown): callers end between transactions.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Marks the start of a transaction.
    pub(crate) fn begin(&mut self) {
        self.last = Instant::now();
    }

    /// Waits after a transaction.
    pub(crate) async fn pause(&mut self) {
        let took = self.last.elapsed();
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(took.mul_f64(self.factor).max(self.min)) => {}
        }
    }
}
