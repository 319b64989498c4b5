//! Data lifecycle: retention of finished runs, the sweeper that removes what expired, and
//! `flowgate gc`.
//!
//! ```text
//! every FLOWGATE_GC_INTERVAL (jittered) ─► pg_try_advisory_lock ─► one sweep (sweep.rs):
//!   prune dead executors ─► end idle external runs ─► expired runs, a batch at a time
//!   (delete.rs: records top-down, then steps/events/messages, then the run row + notes)
//!   ─► consumed messages past retention (idempotency keys kept in message_keys)
//! ```
//!
//! Every transaction deletes at most `FLOWGATE_GC_BATCH` rows and is followed by a pause that
//! keeps the sweep's connection busy at most `FLOWGATE_GC_DUTY` of the time (20 %), so a
//! sweep never holds locks for long nor crowds out live traffic. One process sweeps at a
//! time (advisory lock); the others skip. This
//! module must never delete an ENQUEUED or PENDING run (an idle external run is ended
//! first), and never wait on a lock held by live traffic for more than `lock_timeout`.

pub mod delete;
pub mod plan;
pub mod sweep;
pub mod tables;

use clap::Args;
use tokio_util::sync::CancellationToken;

pub use crate::config::retention::{parse_duration, RetentionConfig};
pub use plan::Plan;
pub use sweep::{LockMode, SweepReport, Sweeper};

use crate::config::DEFAULT_DATABASE_URL;

/// Sweeps every `gc_interval` (±25 %, so processes started together spread out) until
/// `shutdown`; does nothing when the interval is zero.
pub async fn sweep_loop(sweeper: Sweeper, shutdown: CancellationToken) {
    let interval = sweeper.cfg.gc_interval;
    if interval.is_zero() {
        return;
    }
    loop {
        let wait = interval.mul_f64(0.75 + rand::random::<f64>() * 0.5);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match sweeper.run_once(LockMode::Try, &shutdown).await {
            Ok(r) if r.skipped => tracing::debug!("another process is sweeping"),
            Ok(r) if r.deleted.values().any(|n| *n > 0) || r.idle_ended > 0 => {
                tracing::info!(deleted = ?r.deleted, idle_ended = r.idle_ended, seconds = r.seconds, "swept");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed; trying again next interval"),
        }
    }
}

/// Settings for `flowgate gc`.
#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Print what a sweep would remove (rows and bytes per table); delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Retention settings.
    #[command(flatten)]
    pub retention: RetentionConfig,
}

/// `flowgate gc`: migrates, then sweeps now (waiting for a sweep running elsewhere to end)
/// or with `--dry-run` counts what would go; returns the text to print.
pub async fn gc(args: GcArgs) -> anyhow::Result<String> {
    let store = crate::store::Store::connect(&args.database_url, 2).await?;
    store.migrate().await?;
    let sweeper = Sweeper::new(store.pool.clone(), args.retention, None);
    let out = if args.dry_run {
        let plan = sweeper.plan().await?;
        if args.json {
            serde_json::to_string_pretty(&plan)?
        } else {
            plan.render()
        }
    } else {
        let report = sweeper
            .run_once(LockMode::Wait, &CancellationToken::new())
            .await?;
        if args.json {
            serde_json::to_string_pretty(&report)?
        } else {
            render_report(&report)
        }
    };
    store.pool.close().await;
    Ok(out)
}

/// The text `flowgate gc` prints after a sweep.
pub fn render_report(r: &SweepReport) -> String {
    let mut out = format!("flowgate gc: swept in {:.3} s\n", r.seconds);
    for (table, n) in &r.deleted {
        out.push_str(&format!("{table:<20} {n:>12} deleted\n"));
    }
    out.push_str(&format!(
        "idle external runs ended: {}\nidempotency keys kept: {}\n",
        r.idle_ended, r.message_keys_kept
    ));
    out
}
