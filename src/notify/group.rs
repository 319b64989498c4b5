//! Group commit for this process's own writes: stream appends, event sets and message sends
//! from the HTTP producer API, workflows' stream steps, and Durable Streams appends (POST).
//!
//! Callers hand their write to one committer task ([`super::committer`]) and wait for its
//! outcome. The committer takes everything that queued up while its previous batch was in
//! flight and runs it as one statement per [`Family`] of writes (`flowgate.write_batch` for
//! the workflow writes, `flowgate.ds_write_batch` for Durable Streams appends): one
//! transaction, one commit (one WAL flush) for the whole batch, each write still getting its
//! own offsets, version or message id, or its own refusal. The same statement sends the
//! wake-ups (`pg_notify`), so they commit exactly when the data does: a crash can never
//! leave committed data unannounced. Only one batch is in flight per process, so NOTIFY's
//! global lock (held through commit) is never contended by our own writes; with one writer
//! a write goes straight through with no added wait.
//!
//! After a batch commits, the committer wakes local subscribers through the hub at once
//! and hands appended records to their stream's fetcher, which broadcasts them without
//! reading them back (the listener skips our own notes when they come back).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;
use sqlx::PgConnection;
use tokio::sync::{mpsc, oneshot};

use super::committer::{self, Job, Pending};
use crate::error::StoreError;
use crate::hub::Hub;
use crate::ids::{Key, RunId, Topic};
use crate::note::{durable_key, Note, NoteKind, DURABLE_NAMESPACE};
use crate::store::batch::{self, Outcome, StepFence, Write};
use crate::store::durable_streams::{self, DsAppend, DsOutcome};

/// Writes that may wait for the committer before callers wait to enqueue.
const QUEUE: usize = 4096;

/// A kind of write the committer batches: how a batch of them runs as one statement, and
/// what follows its commit.
pub trait Family: Sized + Send + Sync + 'static {
    /// What one write did.
    type Outcome: Send + 'static;

    /// Runs `writes` in one statement (one transaction) and sends their notes, tagged
    /// with `origin`, in it. Outcomes are in the order of `writes`.
    fn execute<'a>(
        conn: &'a mut PgConnection,
        origin: &'a str,
        writes: &'a [&'a Self],
    ) -> impl Future<Output = Result<Vec<Self::Outcome>, StoreError>> + Send + 'a;

    /// After the commit: wakes this process's subscribers (never blocks, never reads).
    fn committed(self, hub: &Hub, outcome: &Self::Outcome);

    /// Bytes it carries (to bound a batch's size).
    fn size(&self) -> usize;

    /// Orders a batch: locks are taken in this order across batches and processes, and
    /// writes with equal keys keep their queue order.
    fn order(&self, other: &Self) -> std::cmp::Ordering;
}

/// Gathers this process's concurrent writes into shared transactions. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    origin: String,
    /// The committer's queue; the committer starts with the first write.
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// A group committer writing through `hub`'s store, tagging notes with `origin`.
    pub fn new(hub: Hub, origin: String) -> Self {
        GroupCommit {
            inner: Arc::new(Inner {
                hub,
                origin,
                queue: OnceLock::new(),
            }),
        }
    }

    async fn enqueue<W: Family>(
        &self,
        write: W,
        wrap: fn(Pending<W>) -> Job,
    ) -> Result<W::Outcome, StoreError> {
        let queue = self.inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let hub = self.inner.hub.clone();
            tokio::spawn(committer::run(hub, self.inner.origin.clone(), rx));
            tx
        });
        let (reply, outcome) = oneshot::channel();
        queue
            .send(wrap(Pending { write, reply }))
            .await
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// Runs `write` in the next batch; returns its outcome once the batch has committed.
    pub async fn submit(&self, write: Write) -> Result<Outcome, StoreError> {
        self.enqueue(write, Job::Flow).await
    }

    /// Runs a Durable Streams append in the next batch; returns its outcome once the batch
    /// has committed (readers in this process are woken by then).
    pub async fn ds_append(&self, append: DsAppend) -> Result<DsOutcome, StoreError> {
        self.enqueue(append, Job::Durable).await
    }

    /// Appends records to stream (`run`, `key`); returns the first offset.
    pub async fn append(
        &self,
        run: &RunId,
        key: &Key,
        payloads: Vec<Vec<u8>>,
    ) -> Result<i64, StoreError> {
        let write = Write::Append {
            run: run.as_str().to_string(),
            key: key.as_str().to_string(),
            payloads,
            fence: None,
        };
        let closed = format!("stream {run}/{key} is closed");
        Ok(done(self.submit(write).await?, &closed)?.0)
    }

    /// Appends records as a workflow's step (see [`StepFence`]); the outcome says whether
    /// the fence held.
    pub async fn step_append(
        &self,
        run: &str,
        key: &Key,
        payloads: Vec<Vec<u8>>,
        fence: StepFence,
    ) -> Result<Outcome, StoreError> {
        let write = Write::Append {
            run: run.to_string(),
            key: key.as_str().to_string(),
            payloads,
            fence: Some(fence),
        };
        self.submit(write).await
    }

    /// Sets event `key` of `run`; returns the new version.
    pub async fn set_event(
        &self,
        run: &RunId,
        key: &Key,
        value: Box<serde_json::value::RawValue>,
    ) -> Result<i64, StoreError> {
        let write = Write::Event {
            run: run.as_str().to_string(),
            key: key.as_str().to_string(),
            value,
        };
        Ok(done(self.submit(write).await?, "conflict")?.0)
    }

    /// Sends a message; returns `(message_id, duplicate)`.
    pub async fn send(
        &self,
        run: &RunId,
        topic: &Topic,
        body: Value,
        idempotency_key: Option<String>,
    ) -> Result<(i64, bool), StoreError> {
        let write = Write::Send {
            run: run.as_str().to_string(),
            topic: topic.as_str().to_string(),
            body,
            idempotency_key,
        };
        let conflict = "idempotency key was used for another message";
        done(self.submit(write).await?, conflict)
    }
}

/// Workflow writes: `flowgate.write_batch`, or for a lone unfenced write the plain
/// `*_quiet` function plus `pg_notify`.
impl Family for Write {
    type Outcome = Outcome;

    async fn execute<'a>(
        conn: &'a mut PgConnection,
        origin: &'a str,
        writes: &'a [&'a Self],
    ) -> Result<Vec<Outcome>, StoreError> {
        match writes {
            [one] => batch::write_one(conn, origin, one).await.map(|o| vec![o]),
            _ => batch::write_batch(conn, origin, writes).await,
        }
    }

    fn committed(self, hub: &Hub, outcome: &Outcome) {
        let Some(note) = note_of(&self, outcome) else {
            return;
        };
        hub.metrics()
            .notes_published
            .with_label_values(&[note.kind.label()])
            .inc();
        match (self, outcome) {
            (Write::Append { payloads, .. }, Outcome::Done { pos, .. }) => {
                let records = payloads.into_iter().map(Bytes::from).collect();
                hub.dispatch_committed(&note, *pos, records);
            }
            _ => hub.dispatch(&note),
        }
    }

    fn size(&self) -> usize {
        Write::size(self)
    }

    fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.target().cmp(&other.target())
    }
}

/// Durable Streams appends: `flowgate.ds_write_batch`.
impl Family for DsAppend {
    type Outcome = DsOutcome;

    fn execute<'a>(
        conn: &'a mut PgConnection,
        origin: &'a str,
        writes: &'a [&'a Self],
    ) -> impl Future<Output = Result<Vec<DsOutcome>, StoreError>> + Send + 'a {
        durable_streams::batch::write_batch(conn, origin, writes)
    }

    /// New rows go to the stream's fetcher, which broadcasts them without reading them back;
    /// a close wakes it to read the closed flag.
    fn committed(self, hub: &Hub, outcome: &DsOutcome) {
        let DsOutcome::Done { id, tail, .. } = *outcome else {
            return;
        };
        if self.rows.is_empty() && !self.close {
            return;
        }
        let note = Note::new(NoteKind::Stream, DURABLE_NAMESPACE, durable_key(id), tail);
        hub.metrics()
            .notes_published
            .with_label_values(&[note.kind.label()])
            .inc();
        if !self.rows.is_empty() {
            // Hub offsets are row numbers minus one: the first new row is at the old tail.
            let first = tail - self.rows.len() as i64;
            hub.dispatch_committed(&note, first, self.rows);
        }
        if self.close {
            hub.dispatch(&note);
        }
    }

    fn size(&self) -> usize {
        DsAppend::size(self)
    }

    fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.path.cmp(&other.path)
    }
}

/// The note announcing a committed write (already sent in its transaction).
fn note_of(write: &Write, outcome: &Outcome) -> Option<Note> {
    let Outcome::Done { pos, duplicate } = *outcome else {
        return None;
    };
    Some(match write {
        Write::Append {
            run, key, payloads, ..
        } => Note::new(NoteKind::Stream, run, key, pos + payloads.len() as i64),
        Write::Event { run, key, .. } => Note::new(NoteKind::Event, run, key, pos),
        Write::Send { .. } if duplicate => return None,
        Write::Send { run, topic, .. } => Note::new(NoteKind::Message, run, topic, pos),
    })
}

pub(super) fn closed() -> StoreError {
    StoreError::Db(sqlx::Error::PoolClosed)
}

/// The position and duplicate flag of a committed write, or its refusal as an error.
fn done(outcome: Outcome, conflict: &str) -> Result<(i64, bool), StoreError> {
    match outcome {
        Outcome::Done { pos, duplicate } => Ok((pos, duplicate)),
        Outcome::RunNotFound => Err(StoreError::RunNotFound),
        Outcome::Conflict => Err(StoreError::Conflict(conflict.to_string())),
        // Only fenced writes can lose their fence.
        Outcome::Cancelled | Outcome::Superseded => Err(StoreError::Conflict(conflict.into())),
    }
}
