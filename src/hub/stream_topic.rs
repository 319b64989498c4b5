//! A stream topic: one fetcher per (run, key) in this process, and the subscriber's
//! catch-up-then-follow loop that makes delivery gapless and duplicate-free.
//!
//! Correctness does not depend on notes arriving: a subscriber first subscribes, then reads
//! the database from its own position, then takes broadcast batches, skipping offsets it
//! already has and re-reading whenever a batch starts beyond its position (it lagged or
//! joined between reads). Offsets commit in order (appends hold the stream row's lock), so
//! any snapshot holds a contiguous prefix and this loop never skips a record.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use super::wanted::Wanted;
use super::Source;
use super::{lock, retry, Hub, READ_LIMIT, TOPIC_CAPACITY};
use crate::replica::Want;
use crate::store::{PageAt, StreamPage};

/// What a stream fetcher broadcasts: records read from `from` in one snapshot.
#[derive(Debug)]
pub struct Batch {
    /// Offset of the first record in `page`.
    pub from: i64,
    /// The records and the tail at that snapshot.
    pub page: StreamPage,
    /// When the wake-up that led to this read reached the hub.
    pub woken: Instant,
}

/// One live stream in this process.
pub struct StreamTopic {
    run: String,
    key: String,
    tx: broadcast::Sender<Arc<Batch>>,
    wake: Notify,
    /// The first wake-up not yet served by a read (for the delivery-latency histogram).
    woken_at: Mutex<Option<Instant>>,
    /// Records this process committed, handed over by the writer: (first offset, records).
    handed: Mutex<Vec<(i64, Vec<Bytes>)>>,
    /// Set by every wake-up that is not a hand-over: the fetcher must read the database.
    read_needed: AtomicBool,
    /// The positions announced by notes.
    wanted: Wanted,
    /// The position the fetcher has broadcast up to: a follower's catch-up must reach it.
    known: AtomicI64,
    stop: CancellationToken,
}

/// Hand-overs kept for a fetcher that is not keeping up; past it, it reads instead.
const MAX_HANDED: usize = 1024;

impl StreamTopic {
    /// Asks the fetcher to read what is new (coalesces: many wakes, one read).
    pub fn wake(&self) {
        self.wanted.fence();
        self.wake_at(0);
    }

    /// Like [`StreamTopic::wake`] for a note saying position `pos` exists (0: unknown).
    pub fn wake_at(&self, pos: i64) {
        self.wanted.announce(pos);
        self.read_needed.store(true, Ordering::SeqCst);
        lock(&self.woken_at).get_or_insert_with(Instant::now);
        self.wake.notify_one();
    }

    /// Hands over records this process has just committed at offsets `first..`: if they
    /// follow what the fetcher has broadcast, it broadcasts them without reading them back;
    /// otherwise (another writer's records come first) it reads as usual.
    pub fn hand_over(&self, first: i64, records: Vec<Bytes>) {
        {
            let mut h = lock(&self.handed);
            if h.len() >= MAX_HANDED {
                h.clear();
                self.read_needed.store(true, Ordering::SeqCst);
            }
            h.push((first, records));
        }
        lock(&self.woken_at).get_or_insert_with(Instant::now);
        self.wake.notify_one();
    }

    /// After a listener reconnect: the fetcher re-reads from its position; every subscriber
    /// behind that position sees the gap and re-reads from its own.
    pub fn resync(&self) {
        self.wake();
    }
}

/// What a follower yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A record at an offset.
    Record(i64, Bytes),
    /// The close marker: nothing will follow; `next` is the final length.
    End(i64),
    /// The run was removed (retention) while being read: nothing will follow; the offset
    /// is the position the reader had reached.
    Gone(i64),
}

/// A registration with a stream topic; dropping it unregisters (and stops the fetcher when
/// it was the last one).
pub struct StreamSubscription {
    hub: Hub,
    topic: Arc<StreamTopic>,
    rx: Option<broadcast::Receiver<Arc<Batch>>>,
}

impl Hub {
    /// Subscribes to stream (`run`, `key`), starting its fetcher if it is the first.
    pub fn subscribe_stream(&self, run: &str, key: &str) -> StreamSubscription {
        let mut map = lock(&self.inner.streams);
        let topic = map
            .entry((run.to_string(), key.to_string()))
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(TOPIC_CAPACITY);
                let topic = Arc::new(StreamTopic {
                    run: run.to_string(),
                    key: key.to_string(),
                    tx,
                    wake: Notify::new(),
                    woken_at: Mutex::new(None),
                    handed: Mutex::default(),
                    read_needed: AtomicBool::new(false),
                    wanted: Wanted::default(),
                    known: AtomicI64::new(0),
                    stop: self.inner.cancel.child_token(),
                });
                let reads = self.inner.metrics.stream_reads.clone();
                tokio::spawn(fetch_loop(self.inner.source.clone(), topic.clone(), reads));
                topic
            })
            .clone();
        let rx = topic.tx.subscribe();
        drop(map);
        StreamSubscription {
            hub: self.clone(),
            topic,
            rx: Some(rx),
        }
    }
}

impl Hub {
    /// Like [`Hub::dispatch`] for the note of records this process has just committed at
    /// offsets `first..`: they are handed to the stream's fetcher, which broadcasts them
    /// without reading them back when nothing else came first.
    pub fn dispatch_committed(&self, note: &crate::note::Note, first: i64, records: Vec<Bytes>) {
        if let Some(t) = self.stream_topic(&note.run, &note.key) {
            t.hand_over(first, records);
        }
        if let Some(t) = self.run_topic(&note.run) {
            t.stream_touched(&note.key);
        }
    }
}

impl Drop for StreamSubscription {
    fn drop(&mut self) {
        self.rx = None;
        let mut map = lock(&self.hub.inner.streams);
        let k = (self.topic.run.clone(), self.topic.key.clone());
        let ours = map.get(&k).is_some_and(|t| Arc::ptr_eq(t, &self.topic));
        if ours && self.topic.tx.receiver_count() == 0 {
            map.remove(&k);
            self.topic.stop.cancel();
        }
    }
}

/// Reads a page of the topic's stream showing `want`, retrying until it succeeds.
async fn read_retrying(
    source: &Source,
    run: &str,
    key: &str,
    from: i64,
    limit: i64,
    want: Want,
) -> StreamPage {
    retry("stream", || {
        let at = PageAt {
            run,
            key,
            from,
            limit,
        };
        source.read_page(at, want)
    })
    .await
}

/// The topic's one reader: on each wake, reads everything past its position and broadcasts.
async fn fetch_loop(store: Source, topic: Arc<StreamTopic>, reads: prometheus::IntCounter) {
    let run = topic.run.as_str();
    let key = topic.key.as_str();
    let read = async {
        let tail = read_retrying(&store, run, key, 0, 0, Want::Everything).await;
        let mut upto = tail.next;
        topic.known.fetch_max(upto, Ordering::SeqCst);
        let mut end_sent = tail.closed;
        // Announce where the fetcher starts: a write that committed between a subscriber's
        // own catch-up and this read would otherwise leave that subscriber behind until the
        // next write. The empty batch makes every subscriber behind `upto` re-read.
        let marker = Batch {
            from: upto,
            page: tail,
            woken: Instant::now(),
        };
        let _ = topic.tx.send(Arc::new(marker));
        loop {
            topic.wake.notified().await;
            let woken = lock(&topic.woken_at).take().unwrap_or_else(Instant::now);
            let read_needed = topic.read_needed.swap(false, Ordering::SeqCst);
            let gap = broadcast_handed(&topic, &mut upto, woken);
            if !(read_needed || gap) {
                continue;
            }
            let mut want = topic.wanted.take(upto);
            loop {
                reads.inc();
                let page = read_retrying(&store, run, key, upto, READ_LIMIT, want).await;
                want = want.max(Want::AtLeast(upto));
                let n = page.records.len() as i64;
                let end = page.ended_at(upto + n);
                // More is there if this page stopped short of its tail (row or byte limit).
                let full = n > 0 && upto + n < page.next;
                if n > 0 || (end && !end_sent) || page.gone {
                    let _ = topic.tx.send(Arc::new(Batch {
                        from: upto,
                        page,
                        woken,
                    }));
                    topic.known.fetch_max(upto + n, Ordering::SeqCst);
                    upto += n;
                    end_sent = end;
                }
                if !full {
                    break;
                }
            }
        }
    };
    tokio::select! {
        _ = topic.stop.cancelled() => {}
        _ = read => {}
    }
}

/// Broadcasts the handed-over records that continue from `upto`; true if some did not
/// (a gap: records of another writer come first, so the fetcher must read).
fn broadcast_handed(topic: &StreamTopic, upto: &mut i64, woken: Instant) -> bool {
    let mut handed = std::mem::take(&mut *lock(&topic.handed));
    handed.sort_by_key(|(first, _)| *first);
    for (first, records) in handed {
        let n = records.len() as i64;
        if first + n <= *upto {
            continue;
        }
        if first != *upto {
            return true;
        }
        let page = StreamPage {
            records: (first..).zip(records).collect(),
            next: first + n,
            closed: false,
            gone: false,
        };
        topic.known.fetch_max(first + n, Ordering::SeqCst);
        let _ = topic.tx.send(Arc::new(Batch {
            from: first,
            page,
            woken,
        }));
        *upto = first + n;
    }
    false
}

impl StreamSubscription {
    async fn recv(&mut self) -> Result<Arc<Batch>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }

    /// Every record from offset `from` on, in order, exactly once, then `End` if the stream
    /// is closed. Never fails: database errors are retried.
    pub fn follow(mut self, from: i64) -> impl Stream<Item = StreamItem> + Send + 'static {
        async_stream::stream! {
            let store = self.hub.source().clone();
            let metrics = self.hub.metrics().clone();
            let (run, key) = (self.topic.run.clone(), self.topic.key.clone());
            let mut pos = from;
            'catch_up: loop {
                loop {
                    // Boxed: the read's state lives only while reading, so an idle
                    // follower (most of them, most of the time) stays small.
                    // What the fetcher has broadcast before this follower subscribed exists:
                    // a standby read must show it (later batches reach this follower).
                    let known = self.topic.known.load(Ordering::SeqCst);
                    let want = if known > pos { Want::AtLeast(known) } else { Want::Any };
                    let page = Box::pin(read_retrying(&store, &run, &key, pos, READ_LIMIT, want)).await;
                    if page.gone {
                        yield StreamItem::Gone(pos);
                        return;
                    }
                    let n = page.records.len() as i64;
                    for (o, p) in page.records.iter().cloned() {
                        pos = o + 1;
                        yield StreamItem::Record(o, p);
                    }
                    if page.ended_at(pos) {
                        yield StreamItem::End(page.next);
                        return;
                    }
                    if n == 0 || pos >= page.next {
                        break;
                    }
                }
                loop {
                    match self.recv().await {
                        Ok(batch) => {
                            if batch.page.gone {
                                yield StreamItem::Gone(pos);
                                return;
                            }
                            if batch.from > pos {
                                continue 'catch_up;
                            }
                            metrics.delivery_seconds.observe(batch.woken.elapsed().as_secs_f64());
                            for (o, p) in batch.page.records.iter() {
                                if *o >= pos {
                                    pos = o + 1;
                                    yield StreamItem::Record(*o, p.clone());
                                }
                            }
                            if batch.page.ended_at(pos) {
                                yield StreamItem::End(batch.page.next);
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            metrics.lagged.inc();
                            continue 'catch_up;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        }
    }
}
