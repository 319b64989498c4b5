//! A run topic: events, status changes, message arrivals and stream activity of one run,
//! with one fetcher per run in this process.
//!
//! Event versions come from the run's event clock, taken under the run row's lock, so they
//! commit in order and a snapshot read "versions above v" never misses an earlier commit.
//! Each fetched batch says which version it starts after; a subscriber whose position is
//! older than that re-reads from the database, exactly like stream subscribers.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use super::wanted::Wanted;
use super::Source;
use super::{lock, retry, Hub, TOPIC_CAPACITY};
use crate::replica::Want;
use crate::store::{EventRow, RunRow, StepRow};

/// Event changes read in one snapshot.
#[derive(Debug)]
pub struct EventBatch {
    /// The batch holds every change with a version above this …
    pub after: i64,
    /// … up to and including this one (the run's event clock at the snapshot).
    pub clock: i64,
    /// Latest value of each key changed in (after, clock], by version.
    pub events: Vec<EventRow>,
}

/// Timeline steps read in one snapshot: every step numbered above `after` up to the last
/// one in `steps` (or none, if the read found nothing new).
#[derive(Debug)]
pub struct StepBatch {
    /// The batch holds every step numbered above this.
    pub after: i32,
    /// The steps, in order.
    pub steps: Vec<StepRow>,
}

/// What a run topic broadcasts.
#[derive(Debug, Clone)]
pub enum RunUpdate {
    /// Events changed.
    Events(Arc<EventBatch>),
    /// The run's status row changed.
    Status(Arc<RunRow>),
    /// A message arrived on this topic.
    Message(Arc<str>),
    /// This stream key was appended to or closed.
    Stream(Arc<str>),
    /// Workflow steps were recorded.
    Steps(Arc<StepBatch>),
}

/// One live run in this process.
pub struct RunTopic {
    run: String,
    tx: broadcast::Sender<RunUpdate>,
    wake: Notify,
    events_dirty: AtomicBool,
    status_dirty: AtomicBool,
    steps_dirty: AtomicBool,
    /// The event versions announced by notes.
    events_wanted: Wanted,
    /// The event clock the fetcher has broadcast up to.
    known: AtomicI64,
    stop: CancellationToken,
}

impl RunTopic {
    /// Events may have changed.
    pub fn wake_events(&self) {
        self.wake_events_at(0);
    }

    /// Event version `version` exists (0: unknown).
    pub fn wake_events_at(&self, version: i64) {
        self.events_wanted.announce(version);
        self.events_dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Status may have changed.
    pub fn wake_status(&self) {
        self.status_dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Steps may have been recorded.
    pub fn wake_steps(&self) {
        self.steps_dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// A message arrived (no read needed: receivers consume from the database).
    pub fn message(&self, topic: &str) {
        let _ = self.tx.send(RunUpdate::Message(topic.into()));
    }

    /// A stream of this run changed.
    pub fn stream_touched(&self, key: &str) {
        let _ = self.tx.send(RunUpdate::Stream(key.into()));
    }

    /// Re-read everything (after a listener reconnect).
    pub fn resync(&self) {
        self.wake_events();
        self.wake_status();
        self.wake_steps();
        let _ = self.tx.send(RunUpdate::Message("".into()));
    }
}

/// A registration with a run topic; dropping it unregisters.
pub struct RunSubscription {
    hub: Hub,
    topic: Arc<RunTopic>,
    rx: broadcast::Receiver<RunUpdate>,
}

impl Hub {
    /// Subscribes to run `run`, starting its fetcher if it is the first.
    pub fn subscribe_run(&self, run: &str) -> RunSubscription {
        let mut map = lock(&self.inner.runs);
        let topic = map
            .entry(run.to_string())
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(TOPIC_CAPACITY);
                let topic = Arc::new(RunTopic {
                    run: run.to_string(),
                    tx,
                    wake: Notify::new(),
                    events_dirty: AtomicBool::new(false),
                    status_dirty: AtomicBool::new(false),
                    steps_dirty: AtomicBool::new(false),
                    events_wanted: Wanted::default(),
                    known: AtomicI64::new(0),
                    stop: self.inner.cancel.child_token(),
                });
                tokio::spawn(fetch_loop(self.inner.source.clone(), topic.clone()));
                topic
            })
            .clone();
        let rx = topic.tx.subscribe();
        drop(map);
        RunSubscription {
            hub: self.clone(),
            topic,
            rx,
        }
    }
}

impl Drop for RunSubscription {
    fn drop(&mut self) {
        let mut map = lock(&self.hub.inner.runs);
        // Our own receiver is still alive here, so "last" means a count of one.
        let ours = map
            .get(&self.topic.run)
            .is_some_and(|t| Arc::ptr_eq(t, &self.topic));
        if ours && self.topic.tx.receiver_count() <= 1 {
            map.remove(&self.topic.run);
            self.topic.stop.cancel();
        }
    }
}

async fn fetch_loop(store: Source, topic: Arc<RunTopic>) {
    let run = topic.run.as_str();
    let read = async {
        let (_, clock) = retry("events", || {
            store.events_after_want(run, i64::MAX, Want::Everything)
        })
        .await;
        let mut upto = clock.unwrap_or(0);
        topic.known.fetch_max(upto, Ordering::SeqCst);
        // Announce where the fetcher starts, so a subscriber whose own read predates a
        // write that this initial read already covers re-reads instead of waiting.
        let marker = EventBatch {
            after: upto,
            clock: upto,
            events: Vec::new(),
        };
        let _ = topic.tx.send(RunUpdate::Events(Arc::new(marker)));
        let mut status: Option<RunRow> = None;
        // Steps start from the beginning: subscribers skip what they already have.
        let mut steps_upto = -1;
        loop {
            topic.wake.notified().await;
            if topic.steps_dirty.swap(false, Ordering::SeqCst) {
                let steps = retry("steps", || store.steps_after(run, steps_upto)).await;
                if let Some(last) = steps.last().map(|s| s.step) {
                    if steps.len() as i64 >= crate::store::steps::STEP_PAGE {
                        topic.wake_steps();
                    }
                    let batch = StepBatch {
                        after: steps_upto,
                        steps,
                    };
                    let _ = topic.tx.send(RunUpdate::Steps(Arc::new(batch)));
                    steps_upto = last;
                }
            }
            if topic.events_dirty.swap(false, Ordering::SeqCst) {
                let want = topic.events_wanted.take(upto);
                let (events, clock) =
                    retry("events", || store.events_after_want(run, upto, want)).await;
                let clock = clock.unwrap_or(upto);
                if clock > upto {
                    let batch = EventBatch {
                        after: upto,
                        clock,
                        events,
                    };
                    topic.known.fetch_max(clock, Ordering::SeqCst);
                    let _ = topic.tx.send(RunUpdate::Events(Arc::new(batch)));
                    upto = clock;
                }
            }
            if topic.status_dirty.swap(false, Ordering::SeqCst) {
                if let Some(row) = retry("status", || store.get_run(run)).await {
                    if status.as_ref() != Some(&row) {
                        status = Some(row.clone());
                        let _ = topic.tx.send(RunUpdate::Status(Arc::new(row)));
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = topic.stop.cancelled() => {}
        _ = read => {}
    }
}

impl RunSubscription {
    /// Where this subscription reads from, and its run.
    fn reader(&self) -> (Source, String) {
        (self.hub.source().clone(), self.topic.run.clone())
    }

    /// The next update; `None` means "you lagged: re-read from the database".
    pub async fn recv(&mut self) -> Option<RunUpdate> {
        loop {
            match self.rx.recv().await {
                Ok(u) => return Some(u),
                Err(broadcast::error::RecvError::Lagged(_)) => return None,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// Waits for event `key` to have a version above `after`; returns it.
    pub async fn wait_event(&mut self, key: &str, after: i64) -> EventRow {
        let (store, run) = self.reader();
        loop {
            let current = retry("event", || store.get_event(&run, key)).await;
            if let Some(ev) = current.filter(|e| e.version > after) {
                return ev;
            }
            while let Some(update) = self.recv().await {
                if let RunUpdate::Events(b) = update {
                    if let Some(ev) = b.events.iter().find(|e| e.key == key && e.version > after) {
                        return ev.clone();
                    }
                    if b.events.is_empty() {
                        // The fetcher's start marker: re-read, the write may predate it.
                        break;
                    }
                }
            }
        }
    }

    /// Every timeline step numbered above `after`, in order, forever.
    pub fn follow_steps(mut self, after: i32) -> impl Stream<Item = StepRow> + Send + 'static {
        async_stream::stream! {
            let (store, run) = self.reader();
            let mut pos = after;
            'catch_up: loop {
                loop {
                    let steps = retry("steps", || store.steps_after(&run, pos)).await;
                    let full = steps.len() as i64 >= crate::store::steps::STEP_PAGE;
                    for s in steps {
                        pos = pos.max(s.step);
                        yield s;
                    }
                    if !full {
                        break;
                    }
                }
                loop {
                    match self.recv().await {
                        Some(RunUpdate::Steps(b)) => {
                            if b.after > pos {
                                continue 'catch_up;
                            }
                            let start = pos;
                            for s in b.steps.iter().filter(|s| s.step > start) {
                                pos = s.step;
                                yield s.clone();
                            }
                        }
                        Some(_) => {}
                        None => continue 'catch_up,
                    }
                }
            }
        }
    }

    /// Every event change with a version above `after`, in version order, forever.
    pub fn follow_events(mut self, after: i64) -> impl Stream<Item = EventRow> + Send + 'static {
        async_stream::stream! {
            let (store, run) = self.reader();
            let mut pos = after;
            'catch_up: loop {
                let known = self.topic.known.load(Ordering::SeqCst);
                let want = if known > pos { Want::AtLeast(known) } else { Want::Any };
                let (events, clock) =
                    retry("events", || store.events_after_want(&run, pos, want)).await;
                for ev in events {
                    pos = pos.max(ev.version);
                    yield ev;
                }
                pos = pos.max(clock.unwrap_or(pos));
                loop {
                    match self.recv().await {
                        Some(RunUpdate::Events(b)) => {
                            if b.after > pos {
                                continue 'catch_up;
                            }
                            for ev in b.events.iter().filter(|e| e.version > pos) {
                                yield ev.clone();
                            }
                            pos = pos.max(b.clock);
                        }
                        Some(_) => {}
                        None => continue 'catch_up,
                    }
                }
            }
        }
    }
}
