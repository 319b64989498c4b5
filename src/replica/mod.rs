//! Reads served by streaming standbys (`FLOWGATE_READ_URL`), without loss and without
//! stalls from replay lag.
//!
//! Writes, LISTEN and reads of one's own writes stay on the primary. Catch-up reads and hub
//! fetches go to a standby, and every such read states what it must see:
//!
//! - **a position** (a note's next offset or event version, a client's `Last-Event-ID`):
//!   the standby is re-read, with a short backoff, until it shows that position. This costs
//!   the primary nothing, which is why it is the path taken per delivered record.
//! - **"everything committed so far"** (a topic's first read, a status change, a note
//!   without a position, an absence to confirm): the gateway asks the primary for its WAL
//!   insert position once (one query without table access, shared by every read waiting at
//!   that moment: the *fence*), waits until the standby has replayed past it, then reads
//!   the standby.
//!
//! Past the bound (`FLOWGATE_READ_LAG_BOUND_MS`) the read goes to the primary and counts a
//! fallback; the standby is then skipped until the [`monitor`] sees it replay past the
//! primary's position again. A standby that fails, stops answering or was promoted is
//! skipped the same way, and the next healthy standby (or the primary) serves.

pub mod monitor;
pub mod reads;

pub use crate::config::read::ReadSettings;
pub use reads::{Want, CLOSED_FLAG};

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::StoreError;
use crate::store::Store;

/// How a read that the standby has not caught up with yet is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Re-read the standby until the result is fresh (a known position is awaited).
    Poll,
    /// Fence, wait for replay, then re-read once: that answer is authoritative.
    Confirm,
    /// Fence first: the answer must include everything committed before the read began.
    Fenced,
}

/// What the gateway knows of one standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Serving reads.
    Ok,
    /// Behind by more than the bound (or paused): skipped until it replays past `target`.
    Behind,
    /// Unreachable or failing.
    Down,
    /// No longer in recovery: it was promoted and may diverge from the primary.
    Promoted,
}

/// One standby's state.
#[derive(Debug, Clone, Serialize)]
pub struct StandbyState {
    /// Health.
    pub state: Health,
    /// Primary WAL position the standby must replay past before it serves again.
    #[serde(skip)]
    pub target: Option<i64>,
    /// Replay lag in bytes of WAL at the last probe.
    pub lag_bytes: i64,
    /// Replay lag in seconds as seen by this gateway at the last probe.
    pub lag_seconds: f64,
}

/// A standby: its pool and state.
pub struct Standby {
    /// Label in metrics and readiness (its position in `FLOWGATE_READ_URL`).
    pub label: String,
    /// Its pool.
    pub store: Store,
    state: Mutex<StandbyState>,
    /// Primary WAL positions recently sampled, with when (for lag in seconds).
    samples: Mutex<std::collections::VecDeque<(Instant, i64)>>,
}

impl Standby {
    /// A copy of its state.
    pub fn state(&self) -> StandbyState {
        lock(&self.state).clone()
    }

    fn set(&self, f: impl FnOnce(&mut StandbyState)) {
        f(&mut lock(&self.state))
    }

    fn mark(&self, h: Health) {
        self.set(|s| {
            if s.state != Health::Promoted || h == Health::Down {
                s.state = h;
                s.target = None;
            }
        });
    }
}

/// Counters and gauges of the read path.
#[derive(Clone)]
pub struct ReplicaMetrics {
    /// Read queries by target (`standby`, `primary`).
    pub reads: IntCounterVec,
    /// Reads sent to the primary by reason (`lag`, `error`, `unavailable`).
    pub fallbacks: IntCounterVec,
    /// Fence queries sent to the primary.
    pub fences: IntCounter,
    /// Replay lag in bytes, per standby.
    pub lag_bytes: IntGaugeVec,
    /// Replay lag in milliseconds as seen by this gateway, per standby.
    pub lag_ms: IntGaugeVec,
    /// 1 while the standby serves reads, per standby.
    pub serving: IntGaugeVec,
}

impl ReplicaMetrics {
    /// Registers the metrics in `r`.
    pub fn register(r: &Registry) -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &[label]).expect("metric");
            let _ = r.register(Box::new(v.clone()));
            v
        };
        let gauge = |name: &str, help: &str| {
            let v = IntGaugeVec::new(Opts::new(name, help), &["standby"]).expect("metric");
            let _ = r.register(Box::new(v.clone()));
            v
        };
        let fences = IntCounter::new(
            "replica_fences_total",
            "WAL position queries sent to the primary",
        )
        .expect("metric");
        let _ = r.register(Box::new(fences.clone()));
        ReplicaMetrics {
            reads: vec(
                "read_queries_total",
                "Read queries by target (standby, primary)",
                "target",
            ),
            fallbacks: vec(
                "read_fallbacks_total",
                "Reads served by the primary instead of a standby, by reason",
                "reason",
            ),
            fences,
            lag_bytes: gauge("replica_lag_bytes", "Standby replay lag in bytes of WAL"),
            lag_ms: gauge(
                "replica_lag_ms",
                "Standby replay lag in milliseconds, as seen by this gateway",
            ),
            serving: gauge("replica_serving", "1 while the standby serves reads"),
        }
    }
}

/// The read router. Cheap to clone.
#[derive(Clone)]
pub struct Replicas {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas")
            .field("standbys", &self.inner.standbys.len())
            .field("bound", &self.inner.bound)
            .finish()
    }
}

struct Inner {
    primary: Store,
    standbys: Vec<Standby>,
    bound: Duration,
    probe: Duration,
    turn: AtomicUsize,
    fence: monitor::Fence,
    metrics: ReplicaMetrics,
}

impl Replicas {
    /// A router over `urls` (standbys) with `primary` for writes and fallbacks. Standby pools
    /// connect lazily: a standby that is down at start only degrades reads.
    pub fn new(
        primary: Store,
        urls: &[String],
        pool_size: u32,
        bound: Duration,
        probe: Duration,
        metrics: ReplicaMetrics,
    ) -> Result<Self, sqlx::Error> {
        let mut standbys = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let opts: PgConnectOptions = url.parse()?;
            let pool = PgPoolOptions::new()
                .max_connections(pool_size)
                .acquire_timeout(bound.max(Duration::from_millis(100)))
                .connect_lazy_with(opts.application_name("flowgate-read"));
            standbys.push(Standby {
                label: i.to_string(),
                store: Store { pool },
                state: Mutex::new(StandbyState {
                    state: Health::Behind,
                    target: None,
                    lag_bytes: 0,
                    lag_seconds: 0.0,
                }),
                samples: Mutex::default(),
            });
        }
        Ok(Replicas {
            inner: Arc::new(Inner {
                primary,
                standbys,
                bound,
                probe,
                turn: AtomicUsize::new(0),
                fence: monitor::Fence::default(),
                metrics,
            }),
        })
    }

    /// The primary.
    pub fn primary(&self) -> &Store {
        &self.inner.primary
    }

    /// The standbys.
    pub fn standbys(&self) -> &[Standby] {
        &self.inner.standbys
    }

    /// The lag bound.
    pub fn bound(&self) -> Duration {
        self.inner.bound
    }

    /// The read metrics.
    pub fn metrics(&self) -> &ReplicaMetrics {
        &self.inner.metrics
    }

    /// True unless every standby serves.
    pub fn degraded(&self) -> bool {
        self.inner
            .standbys
            .iter()
            .any(|s| s.state().state != Health::Ok)
    }

    /// The next serving standby, round robin.
    fn pick(&self) -> Option<&Standby> {
        let n = self.inner.standbys.len();
        let start = self.inner.turn.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.inner.standbys[(start + i) % n])
            .find(|s| s.state().state == Health::Ok)
    }

    async fn on_primary<T, F, Fut>(&self, f: &F, reason: &str) -> Result<T, StoreError>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let m = &self.inner.metrics;
        m.fallbacks.with_label_values(&[reason]).inc();
        m.reads.with_label_values(&["primary"]).inc();
        f(self.inner.primary.clone()).await
    }

    async fn on_standby<T, F, Fut>(&self, sb: &Standby, f: &F) -> Option<T>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.inner
            .metrics
            .reads
            .with_label_values(&["standby"])
            .inc();
        match tokio::time::timeout(self.inner.bound, f(sb.store.clone())).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(standby = %sb.label, error = %e, "standby read failed");
                sb.mark(Health::Down);
                None
            }
            Err(_) => {
                tracing::warn!(standby = %sb.label, "standby read timed out");
                sb.mark(Health::Down);
                None
            }
        }
    }

    /// Reads with `f` from a standby until `fresh` holds (settled per `mode`), else from the
    /// primary once the bound has passed.
    pub async fn read<T, F, Fut>(
        &self,
        f: F,
        fresh: impl Fn(&T) -> bool,
        mode: Mode,
    ) -> Result<T, StoreError>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let deadline = Instant::now() + self.inner.bound;
        let Some(sb) = self.pick() else {
            return self.on_primary(&f, "unavailable").await;
        };
        if mode == Mode::Fenced {
            return self.fenced(sb, &f, deadline).await;
        }
        let Some(v) = self.on_standby(sb, &f).await else {
            return self.on_primary(&f, "error").await;
        };
        if fresh(&v) {
            return Ok(v);
        }
        if mode == Mode::Confirm {
            return self.fenced(sb, &f, deadline).await;
        }
        let mut pause = Duration::from_millis(1);
        while Instant::now() + pause < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(16));
            let Some(v) = self.on_standby(sb, &f).await else {
                return self.on_primary(&f, "error").await;
            };
            if fresh(&v) {
                return Ok(v);
            }
        }
        sb.mark(Health::Behind);
        self.on_primary(&f, "lag").await
    }

    async fn fenced<T, F, Fut>(
        &self,
        sb: &Standby,
        f: &F,
        deadline: Instant,
    ) -> Result<T, StoreError>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        match self.wait_replay(sb, deadline).await {
            Ok(true) => match self.on_standby(sb, f).await {
                Some(v) => Ok(v),
                None => self.on_primary(f, "error").await,
            },
            Ok(false) => {
                sb.mark(Health::Behind);
                self.on_primary(f, "lag").await
            }
            Err(_) => self.on_primary(f, "error").await,
        }
    }

    /// Starts the probe loop (lag, health, recovery) until `cancel` fires.
    pub fn spawn_monitor(
        &self,
        tracker: &tokio_util::task::TaskTracker,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let me = self.clone();
        tracker.spawn(async move { monitor::run(me, cancel).await });
    }
}

/// The router for `config.read` (`None` when no standby is configured: nothing changes).
pub fn start(
    config: &crate::config::Config,
    primary: &Store,
    metrics: &crate::metrics::Metrics,
    tracker: &tokio_util::task::TaskTracker,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Option<Replicas>, sqlx::Error> {
    let urls: Vec<String> = config
        .read
        .read_url
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    let r = Replicas::new(
        primary.clone(),
        &urls,
        config.pool_size,
        config.read.bound(),
        config.read.probe(),
        ReplicaMetrics::register(&metrics.registry),
    )?;
    r.spawn_monitor(tracker, cancel.clone());
    Ok(Some(r))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
