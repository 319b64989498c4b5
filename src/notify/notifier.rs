//! The coalescing notifier for this process's own writes.
//!
//! NOTIFY takes a global lock held through commit, so a NOTIFY inside every append
//! transaction serialises all writers. Instead our writes commit without notifying, then call
//! [`Notifier::publish`]: local subscribers are woken at once through the hub, and a single
//! background task sends every pending note to other processes in one `pg_notify` statement,
//! deduplicated per (kind, run, key). While one flush is in flight the next batch builds up,
//! so the number of NOTIFY transactions adapts to the write rate (the statement is in
//! [`crate::store::notes`]).
//!
//! At start it announces a resync note, so that subscriptions in other processes re-read
//! anything a crashed predecessor committed but never announced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{GroupCommit, Note, NoteKind, CHANNEL};
use crate::hub::Hub;
use crate::store::Store;

type Pending = HashMap<(NoteKind, String, String), i64>;

/// Publishes notes locally at once and to other processes in coalesced batches.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    /// Group commit for writes that carry their wake-up in their own transaction.
    group: GroupCommit,
    origin: String,
    /// Notes not yet sent to Postgres. A std mutex: held only to insert or swap, never
    /// across an await.
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Notifier {
    /// A notifier for this process's `origin` tag.
    pub fn new(hub: Hub, origin: String) -> Self {
        Notifier {
            inner: Arc::new(Inner {
                group: GroupCommit::new(hub.clone(), origin.clone()),
                hub,
                origin,
                pending: Mutex::default(),
                wake: Notify::new(),
            }),
        }
    }

    /// This process's group committer (see [`super::group`]): writes through it need no
    /// [`publish`](Self::publish).
    pub fn group(&self) -> &GroupCommit {
        &self.inner.group
    }

    /// Wakes local subscribers now and queues the note for other processes.
    pub fn publish(&self, note: Note) {
        self.inner
            .hub
            .metrics()
            .notes_published
            .with_label_values(&[note.kind.label()])
            .inc();
        self.inner.hub.dispatch(&note);
        self.queue(note);
    }

    /// Queues a note for other processes only.
    fn queue(&self, note: Note) {
        {
            let mut p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            let pos = p.entry((note.kind, note.run, note.key)).or_insert(note.pos);
            *pos = (*pos).max(note.pos);
        }
        self.inner.wake.notify_one();
    }

    /// Sends pending notes until `cancel` fires, then flushes once more.
    pub async fn run(self, store: Store, cancel: CancellationToken) {
        self.queue(Note::new(NoteKind::Resync, "", "", 0));
        loop {
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = cancel.cancelled() => {
                    self.flush(&store).await;
                    return;
                }
            }
            self.flush(&store).await;
        }
    }

    async fn flush(&self, store: &Store) {
        let batch =
            std::mem::take(&mut *self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return;
        }
        let payloads: Vec<String> = batch
            .into_iter()
            .map(|((kind, run, key), pos)| {
                Note {
                    kind,
                    run,
                    key,
                    pos,
                }
                .encode(&self.inner.origin)
            })
            .collect();
        let mut delay = Duration::from_millis(20);
        for attempt in 0..8 {
            let r = store.notify_all(CHANNEL, &payloads).await;
            match r {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "could not send notes; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
        // Other processes fall back to their resync on reconnect and their slow re-check.
        tracing::error!(
            notes = payloads.len(),
            "dropping notes after repeated failures"
        );
    }
}
