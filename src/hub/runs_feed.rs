//! The run feed: every run that starts, changes status or finishes, for live run lists.
//!
//! One fetcher per process, started by the first list and stopped with the last, reads
//! what changed once per wake-up (status notes of any run, resyncs, the safety re-check)
//! and broadcasts it; lists filter the broadcast in memory, so a change costs one database
//! read per process however many lists are open. Positions are snapshots
//! ([`Snapshot`]): each batch says which position it starts from, and a list whose own
//! position is older than that re-reads from the database, as stream subscribers do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use super::{lock, retry, Hub, Source, TOPIC_CAPACITY};
use crate::error::StoreError;
use crate::store::run_changes::{RunChange, Snapshot};
use crate::store::runs::{ListQuery, RunSummary};

/// Changes read in one snapshot.
#[derive(Debug)]
pub struct FeedBatch {
    /// The batch holds every change not visible in this position …
    pub from: Snapshot,
    /// … and visible in this one.
    pub to: Snapshot,
    /// The changed runs, in transaction order.
    pub changes: Vec<RunChange>,
}

/// The process-wide feed topic.
pub struct RunsFeed {
    tx: broadcast::Sender<Arc<FeedBatch>>,
    wake: Notify,
    dirty: AtomicBool,
    stop: CancellationToken,
}

impl RunsFeed {
    /// Some run may have changed.
    pub fn wake(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// One change delivered to a list, with the position to resume from after it (`None` while
/// more changes of the same transaction follow).
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// The run as it is now.
    pub run: RunSummary,
    /// Resume position after this item.
    pub position: Option<Snapshot>,
}

/// A list's registration with the feed; dropping it unregisters.
pub struct FeedSubscription {
    hub: Hub,
    feed: Arc<RunsFeed>,
    rx: broadcast::Receiver<Arc<FeedBatch>>,
}

impl Hub {
    /// Wakes the run feed, if any list is open.
    pub(crate) fn wake_feed(&self) {
        if let Some(f) = lock(&self.inner.feed).as_ref() {
            f.wake();
        }
    }

    /// Changes matching `f` after `since` and the position they reach: through the
    /// standbys when reads are replicated.
    async fn run_changes(
        &self,
        since: &Snapshot,
        f: &ListQuery,
    ) -> Result<(Vec<RunChange>, Snapshot), StoreError> {
        match &self.inner.source {
            Source::Replicated(r) => r.run_changes(since, f).await,
            _ => self.inner.store.run_changes(since, f).await,
        }
    }

    /// The newest runs matching `f` and the feed position they are current at (a live
    /// list's first read).
    pub async fn runs_now(&self, f: &ListQuery) -> Result<(Vec<RunSummary>, Snapshot), StoreError> {
        match &self.inner.source {
            Source::Replicated(r) => r.runs_now(f).await,
            _ => self.inner.store.runs_now(f).await,
        }
    }

    /// Subscribes to the run feed, starting its fetcher if this is the first list.
    pub fn subscribe_runs(&self) -> FeedSubscription {
        let mut slot = lock(&self.inner.feed);
        let feed = slot
            .get_or_insert_with(|| {
                let (tx, _) = broadcast::channel(TOPIC_CAPACITY);
                let feed = Arc::new(RunsFeed {
                    tx,
                    wake: Notify::new(),
                    dirty: AtomicBool::new(false),
                    stop: self.inner.cancel.child_token(),
                });
                let reads = self.inner.metrics.run_feed_reads.clone();
                tokio::spawn(fetch_loop(self.clone(), feed.clone(), reads));
                feed
            })
            .clone();
        let rx = feed.tx.subscribe();
        drop(slot);
        FeedSubscription {
            hub: self.clone(),
            feed,
            rx,
        }
    }
}

impl Drop for FeedSubscription {
    fn drop(&mut self) {
        let mut slot = lock(&self.hub.inner.feed);
        if self.feed.tx.receiver_count() <= 1
            && slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, &self.feed))
        {
            *slot = None;
            self.feed.stop.cancel();
        }
    }
}

async fn fetch_loop(hub: Hub, feed: Arc<RunsFeed>, reads: prometheus::IntCounter) {
    let all = ListQuery::default();
    let read = async {
        let mut at = retry("run feed", || hub.inner.store.feed_position()).await;
        // Announce where the fetcher starts: a list whose own read predates it re-reads.
        let marker = FeedBatch {
            from: at.clone(),
            to: at.clone(),
            changes: Vec::new(),
        };
        let _ = feed.tx.send(Arc::new(marker));
        loop {
            feed.wake.notified().await;
            if !feed.dirty.swap(false, Ordering::SeqCst) {
                continue;
            }
            reads.inc();
            let (changes, to) = retry("run feed", || hub.run_changes(&at, &all)).await;
            let from = std::mem::replace(&mut at, to.clone());
            let _ = feed.tx.send(Arc::new(FeedBatch { from, to, changes }));
        }
    };
    tokio::select! {
        _ = feed.stop.cancelled() => {}
        _ = read => {}
    }
}

/// Splits changes into items, each carrying the position after it: a transaction's last
/// change resumes past all of it; earlier ones carry no position.
fn items(changes: Vec<RunChange>, to: &Snapshot) -> Vec<FeedItem> {
    let xids: Vec<u64> = changes.iter().map(|c| c.xid).collect();
    changes
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let last_of_txn = xids.get(i + 1) != Some(&c.xid);
            FeedItem {
                run: c.run,
                position: last_of_txn.then(|| to.without(&xids[i + 1..])),
            }
        })
        .collect()
}

impl FeedSubscription {
    /// Every change matching `filter` after position `since`, forever, each with its
    /// resume position. Reads the database only to catch up (at start, after a gap or
    /// lag); otherwise follows the shared broadcast.
    pub fn follow(
        mut self,
        since: Snapshot,
        filter: ListQuery,
    ) -> impl Stream<Item = FeedItem> + Send + 'static {
        async_stream::stream! {
            let reads = self.hub.metrics().run_feed_reads.clone();
            let mut pos = since;
            'catch_up: loop {
                reads.inc();
                let (changes, to) = retry("run list", || self.hub.run_changes(&pos, &filter)).await;
                for item in items(changes, &to) {
                    yield item;
                }
                pos = to;
                loop {
                    let batch = match self.rx.recv().await {
                        Ok(b) => b,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue 'catch_up,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                            continue;
                        }
                    };
                    if !pos.covers(&batch.from) {
                        continue 'catch_up;
                    }
                    if !batch.to.covers(&pos) {
                        continue;
                    }
                    let fresh: Vec<RunChange> = batch
                        .changes
                        .iter()
                        .filter(|c| !pos.sees(c.xid) && matches(&filter, &c.run))
                        .cloned()
                        .collect();
                    let to = batch.to.clone();
                    for item in items(fresh, &to) {
                        yield item;
                    }
                    pos = to;
                }
            }
        }
    }
}

/// True if `run` passes the list's filter (the same test the SQL applies).
pub fn matches(f: &ListQuery, run: &RunSummary) -> bool {
    f.status.as_ref().is_none_or(|s| *s == run.status)
        && f.workflow.as_ref().is_none_or(|w| *w == run.workflow)
        && f.tag.as_ref().is_none_or(|t| run.tags.contains(t))
        && f.any_tag
            .as_ref()
            .is_none_or(|any| run.tags.iter().any(|t| any.contains(t)))
}
