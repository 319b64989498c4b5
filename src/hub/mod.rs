//! In-process fan-out: one database read per notification per topic, shared by every
//! subscriber in this process.
//!
//! Topics are keyed by stream (`run`, `key`) or by run (events, status, messages). Each live
//! topic has one fetcher task that, when woken by a note, reads what is new once and
//! broadcasts it. Subscribers read from their own position: they catch up from the database,
//! then follow the broadcast, and fall back to the database whenever they see a gap, a resync
//! or lag (a slow subscriber loses its place in the bounded channel, never blocks others).
//! The hub never holds a lock across an `.await`.

pub mod run_topic;
pub mod runs_feed;
pub mod source;
pub mod stream_topic;
pub mod wanted;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::note::{Note, NoteKind};
use crate::store::Store;

pub use run_topic::{RunSubscription, RunUpdate};
pub use runs_feed::{FeedItem, FeedSubscription};
pub use source::Source;
pub use stream_topic::{StreamItem, StreamSubscription};

/// Broadcast capacity per topic, in batches. Past it a subscriber lags and re-reads.
pub const TOPIC_CAPACITY: usize = 256;

/// Records read per database round trip.
pub const READ_LIMIT: i64 = 500;

/// The fan-out hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Where topics read their rows (flowgate's tables unless built with [`Hub::with_source`]).
    source: Source,
    /// Live stream topics. A std mutex: only held to look up, insert or remove, never across
    /// an await, so it cannot deadlock with the fetchers.
    streams: Mutex<HashMap<(String, String), Arc<stream_topic::StreamTopic>>>,
    /// Live run topics (events, status, messages).
    runs: Mutex<HashMap<String, Arc<run_topic::RunTopic>>>,
    /// The run feed for live run lists, while any is open.
    feed: Mutex<Option<Arc<runs_feed::RunsFeed>>>,
    /// Queue wake-ups for the workflow runtime (`None` = resync: re-check every queue).
    queues: broadcast::Sender<Option<String>>,
    /// Stops every fetcher.
    cancel: CancellationToken,
    /// Delivery latency and lag counters.
    metrics: Metrics,
}

impl Hub {
    /// A hub reading from `store`; its fetchers stop when `cancel` fires.
    pub fn new(store: Store, cancel: CancellationToken, metrics: Metrics) -> Self {
        let source = Source::Flowgate(store.clone());
        Self::with_source(store, source, cancel, metrics)
    }

    /// A hub whose topics read from `source` (e.g. a DBOS system database); `store` stays
    /// flowgate's own.
    pub fn with_source(
        store: Store,
        source: Source,
        cancel: CancellationToken,
        metrics: Metrics,
    ) -> Self {
        let (queues, _) = broadcast::channel(TOPIC_CAPACITY);
        Hub {
            inner: Arc::new(Inner {
                store,
                source,
                streams: Mutex::default(),
                runs: Mutex::default(),
                feed: Mutex::default(),
                queues,
                cancel,
                metrics,
            }),
        }
    }

    /// The metrics the hub updates.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The store the hub reads from.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The tables the hub's topics read.
    pub fn source(&self) -> &Source {
        &self.inner.source
    }

    /// Runs with a live topic (run topics and the runs of stream topics), sorted.
    pub fn watched_runs(&self) -> Vec<String> {
        let mut runs: Vec<String> = lock(&self.inner.runs).keys().cloned().collect();
        runs.extend(lock(&self.inner.streams).keys().map(|(r, _)| r.clone()));
        runs.sort();
        runs.dedup();
        runs
    }

    /// Everything about `run` may have changed (its status did): its run topic re-reads
    /// status and events, and each of its stream topics re-reads its tail.
    pub fn wake_run(&self, run: &str) {
        let streams: Vec<_> = lock(&self.inner.streams)
            .iter()
            .filter(|((r, _), _)| r == run)
            .map(|(_, t)| t.clone())
            .collect();
        for t in streams {
            t.wake();
        }
        if let Some(t) = self.run_topic(run) {
            t.wake_status();
            t.wake_events();
            t.wake_steps();
        }
    }

    /// Delivers a wake-up hint to the topics it concerns. Never blocks, never reads.
    pub fn dispatch(&self, note: &Note) {
        match note.kind {
            NoteKind::Stream => {
                if let Some(t) = self.stream_topic(&note.run, &note.key) {
                    t.wake_at(note.pos);
                }
                if let Some(t) = self.run_topic(&note.run) {
                    t.stream_touched(&note.key);
                }
            }
            NoteKind::Event => {
                if let Some(t) = self.run_topic(&note.run) {
                    t.wake_events_at(note.pos);
                }
            }
            NoteKind::Status => {
                if let Some(t) = self.run_topic(&note.run) {
                    t.wake_status();
                }
                self.wake_feed();
            }
            NoteKind::Message => {
                if let Some(t) = self.run_topic(&note.run) {
                    t.message(&note.key);
                }
            }
            NoteKind::Step => {
                if let Some(t) = self.run_topic(&note.run) {
                    t.wake_steps();
                }
            }
            NoteKind::Queue => {
                let _ = self.inner.queues.send(Some(note.key.clone()));
            }
            NoteKind::Resync => self.resync_all(),
        }
    }

    /// Every subscription re-reads from its own position (after a listener reconnect, a
    /// peer's start, or the slow safety re-check).
    pub fn resync_all(&self) {
        self.each_topic(|t| t.resync(), |t| t.resync());
        self.wake_feed();
        let _ = self.inner.queues.send(None);
    }

    /// Wake-ups for queue `Some(name)` or for every queue (`None`).
    pub fn queue_wakeups(&self) -> broadcast::Receiver<Option<String>> {
        self.inner.queues.subscribe()
    }

    /// Number of live topics (streams, runs), for metrics and tests.
    pub fn topic_counts(&self) -> (usize, usize) {
        (
            lock(&self.inner.streams).len(),
            lock(&self.inner.runs).len(),
        )
    }

    /// Wakes every topic every `period` so that a note lost to a crash between commit and
    /// notify delays delivery by at most one period. One cheap read per topic per period;
    /// nothing at all when there are no subscribers.
    pub async fn safety_recheck(self, period: Duration) {
        let mut every = crate::every::Every::after(period, self.inner.cancel.clone());
        while every.tick().await {
            self.each_topic(
                |t| t.wake(),
                |t| {
                    t.wake_events();
                    t.wake_status();
                },
            );
            self.wake_feed();
        }
    }

    /// Calls `stream` on every stream topic, then `run` on every run topic (each map is
    /// copied out first, so no lock is held while they run).
    fn each_topic(
        &self,
        stream: impl Fn(&stream_topic::StreamTopic),
        run: impl Fn(&run_topic::RunTopic),
    ) {
        let streams: Vec<_> = lock(&self.inner.streams).values().cloned().collect();
        streams.iter().for_each(|t| stream(t));
        let runs: Vec<_> = lock(&self.inner.runs).values().cloned().collect();
        runs.iter().for_each(|t| run(t));
    }

    fn stream_topic(&self, run: &str, key: &str) -> Option<Arc<stream_topic::StreamTopic>> {
        lock(&self.inner.streams)
            .get(&(run.to_string(), key.to_string()))
            .cloned()
    }

    fn run_topic(&self, run: &str) -> Option<Arc<run_topic::RunTopic>> {
        lock(&self.inner.runs).get(run).cloned()
    }
}

/// Retries a read with capped backoff: a database outage delays delivery but never ends it.
pub async fn retry_read<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::error::StoreError>>,
{
    retry(what, f).await
}

async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::error::StoreError>>,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                tracing::warn!(error = %e, what, "read failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Locks a std mutex, ignoring poisoning (the maps stay consistent: every critical section
/// is a single insert, lookup or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
