//! Reads served by streaming standbys (`FLOWGATE_READ_URL`), without loss and without
//! stalls from replay lag.
//!
//! Writes, LISTEN and reads of one's own writes stay on the primary. Catch-up reads, hub
//! fetches, the live run list and Durable Streams reads go to a standby, and every such
//! read states what it must see:
//!
//! - **a position** (a note's next offset or event version, a client's `Last-Event-ID`):
//!   the standby is re-read, with a short backoff, until it shows that position. This costs
//!   the primary nothing, which is why it is the path taken per delivered record.
//! - **"everything committed so far"** (a topic's first read, a status change, a note
//!   without a position, an absence to confirm): the gateway asks the primary for its WAL
//!   insert position once (one query without table access, shared by every read waiting at
//!   that moment: the *fence*), waits until the standby has replayed past it, then reads
//!   the standby.
//! - **a primary snapshot** (the live run list, [`feed`]): the fence also returns the
//!   primary's snapshot, and the standby is read up to it once it has replayed past it.
//!
//! Past the bound (`FLOWGATE_READ_LAG_BOUND_MS`) the read goes to the primary and counts a
//! fallback; the standby is then skipped until the [`monitor`] sees it replay past the
//! primary's position again. A standby that fails, stops answering or was promoted is
//! skipped the same way, and the next healthy standby (or the primary) serves.

pub mod feed;
pub mod metrics;
pub mod monitor;
pub mod reads;
pub mod standby;

pub use crate::config::read::ReadSettings;
pub use metrics::ReplicaMetrics;
pub use reads::{Want, CLOSED_FLAG};
pub use standby::{Health, Standby, StandbyState};

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            return self.fenced(sb, &|s, _| f(s), deadline).await;
        }
        let Some(v) = self.on_standby(sb, &f).await else {
            return self.on_primary(&f, "error").await;
        };
        if fresh(&v) {
            return Ok(v);
        }
        if mode == Mode::Confirm {
            return self.fenced(sb, &|s, _| f(s), deadline).await;
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

    /// Fences, waits (until `deadline`) for `sb` to replay past the fence, then reads with
    /// `f` given the fence's snapshot: on `sb`, or on the primary if it did not replay in
    /// time (or, without a snapshot, if the fence itself failed).
    async fn fenced<T, F, Fut>(
        &self,
        sb: &Standby,
        f: &F,
        deadline: Instant,
    ) -> Result<T, StoreError>
    where
        F: Fn(Store, Option<String>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let point = match self.fence().await {
            Ok(p) => p,
            Err(_) => return self.on_primary(&|s| f(s, None), "error").await,
        };
        let at = |s: Store| f(s, Some(point.snapshot.clone()));
        let waited = self.wait_lsn(sb, point.lsn, deadline).await;
        self.after_wait(sb, waited, &at).await
    }

    /// Reads with `f` as of one primary fence point: `f` gets the point's snapshot, and
    /// runs on a standby once it has replayed past the point, else on the primary past the
    /// bound (with no standby at all, on the primary without a fence: `None`).
    pub(super) async fn read_at_fence<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(Store, Option<String>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let deadline = Instant::now() + self.inner.bound;
        let Some(sb) = self.pick() else {
            return self.on_primary(&|s| f(s, None), "unavailable").await;
        };
        self.fenced(sb, &f, deadline).await
    }

    /// Reads from `sb` if it replayed in time (`Ok(true)`), else from the primary.
    async fn after_wait<T, F, Fut>(
        &self,
        sb: &Standby,
        waited: Result<bool, StoreError>,
        f: &F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        match waited {
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
