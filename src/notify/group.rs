//! Group commit for this process's own writes: stream appends, event sets and message sends
//! from the HTTP producer API, and workflows' stream steps.
//!
//! Callers hand their write to one committer task and wait for its outcome. The committer
//! takes everything that queued up while its previous batch was in flight and runs it as
//! one `flowgate.write_batch` statement: one transaction, one commit (one WAL flush) for the
//! whole batch, each write still getting its own offsets, version or message id. The same
//! statement sends the wake-ups (`pg_notify`), so they commit exactly when the data does: a
//! crash can never leave committed data unannounced. Only one batch is in flight per
//! process, so NOTIFY's global lock (held through commit) is never contended by our own
//! writes; with one writer a write goes straight through with no added wait.
//!
//! After a batch commits, the committer wakes local subscribers through the hub at once
//! and hands appended records to their stream's fetcher, which broadcasts them without
//! reading them back (the listener skips our own notes when they come back).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};

use super::{Note, NoteKind};
use crate::error::StoreError;
use crate::hub::Hub;
use crate::ids::{Key, RunId, Topic};
use crate::store::batch::{self, Outcome, StepFence, Write};

/// Writes in one batch, at most.
const MAX_WRITES: usize = 1024;
/// Payload bytes in one batch, at most (a single larger write still goes alone).
const MAX_BYTES: usize = 4 << 20;
/// Writes that may wait for the committer before callers wait to enqueue.
const QUEUE: usize = 4096;
/// The committer keeps its connection while writes keep coming; idle this long, it gives it
/// back to the pool (which checks it before the next use).
const KEEP_CONN: Duration = Duration::from_millis(250);
/// The longest the committer waits for more writes to join a batch.
const MAX_LINGER: Duration = Duration::from_millis(2);

/// A write and where its outcome goes.
struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
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

    /// Runs `write` in the next batch; returns its outcome once the batch has committed.
    pub async fn submit(&self, write: Write) -> Result<Outcome, StoreError> {
        let queue = self.inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let hub = self.inner.hub.clone();
            tokio::spawn(committer(hub, self.inner.origin.clone(), rx));
            tx
        });
        let (reply, outcome) = oneshot::channel();
        queue
            .send(Job { write, reply })
            .await
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
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

fn closed() -> StoreError {
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

/// How the committer gathers its next batch, learned from the last one.
struct Pace {
    /// Writes likely to come soon: those answered last time (writers that answer a reply
    /// with their next write) plus those that queued meanwhile.
    expect: usize,
    /// How long to wait for them: at most half the last batch's time after it finished.
    until: Option<Instant>,
}

/// The committer: one batch in flight; whatever queued meanwhile is the next batch.
///
/// With several writers in a closed loop, taking only what has queued splits them into
/// two cohorts that alternate, each paying a whole commit. So when the last batch showed
/// concurrency, the committer waits a little (never more than half a batch's time, and
/// never with a lone writer) for the writers it just answered, and commits them together.
async fn committer(hub: Hub, origin: String, mut rx: mpsc::Receiver<Job>) {
    let pool = hub.store().pool.clone();
    let mut conn: Option<PoolConnection<Postgres>> = None;
    let mut carry: Option<Job> = None;
    let mut pace = Pace {
        expect: 1,
        until: None,
    };
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match next_job(&mut rx, &mut conn, &pool).await {
                Some(j) => j,
                None => return,
            },
        };
        let jobs = gather(first, &mut rx, &mut carry, &pace).await;
        let n = jobs.len();
        let started = Instant::now();
        run_jobs(&hub, &pool, &mut conn, &origin, jobs).await;
        let took = started.elapsed();
        let expect = n + rx.len();
        pace = Pace {
            expect,
            until: (expect > 1).then(|| Instant::now() + (took / 2).min(MAX_LINGER)),
        };
    }
}

/// Takes `first` and what else is queued (waiting as `pace` says), within the batch limits.
async fn gather(
    first: Job,
    rx: &mut mpsc::Receiver<Job>,
    carry: &mut Option<Job>,
    pace: &Pace,
) -> Vec<Job> {
    let mut bytes = first.write.size();
    let mut jobs = vec![first];
    while jobs.len() < MAX_WRITES {
        let j = match rx.try_recv() {
            Ok(j) => j,
            Err(_) => {
                let Some(until) = pace.until.filter(|_| jobs.len() < pace.expect) else {
                    break;
                };
                match tokio::time::timeout_at(until.into(), rx.recv()).await {
                    Ok(Some(j)) => j,
                    _ => break,
                }
            }
        };
        bytes += j.write.size();
        if bytes > MAX_BYTES {
            *carry = Some(j);
            break;
        }
        jobs.push(j);
    }
    jobs
}

/// Waits for the next write, giving the connection back if none comes soon.
async fn next_job(
    rx: &mut mpsc::Receiver<Job>,
    conn: &mut Option<PoolConnection<Postgres>>,
    pool: &PgPool,
) -> Option<Job> {
    if conn.is_some() {
        tokio::select! {
            j = rx.recv() => return j,
            _ = tokio::time::sleep(KEEP_CONN) => {}
            _ = pool.close_event() => {}
        }
        *conn = None;
    }
    rx.recv().await
}

/// Runs one batch; if the database refused it as a whole (a race the function does not
/// report per write, a deadlock), runs each write alone so only the culprit fails.
async fn run_jobs(
    hub: &Hub,
    pool: &PgPool,
    conn: &mut Option<PoolConnection<Postgres>>,
    origin: &str,
    mut jobs: Vec<Job>,
) {
    // A stable order: locks are taken in (run, key) order across batches and processes,
    // and writes to one stream keep their queue order.
    jobs.sort_by(|a, b| a.write.target().cmp(&b.write.target()));
    let writes: Vec<&Write> = jobs.iter().map(|j| &j.write).collect();
    match execute(pool, conn, origin, &writes).await {
        Ok(outcomes) => {
            for (j, o) in jobs.into_iter().zip(outcomes) {
                finish(hub, j, Ok(o));
            }
        }
        Err(e) if jobs.len() > 1 && is_refusal(&e) => {
            tracing::debug!(error = %e, writes = jobs.len(), "batch refused; writing one by one");
            for j in jobs {
                let r = execute(pool, conn, origin, &[&j.write]).await;
                finish(hub, j, r.map(|mut o| o.remove(0)));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let mut first = Some(e);
            for j in jobs {
                let e = first
                    .take()
                    .unwrap_or_else(|| StoreError::Db(sqlx::Error::Protocol(msg.clone())));
                let _ = j.reply.send(Err(e));
            }
        }
    }
}

/// Wakes local subscribers for a committed write (handing appended records to their
/// stream's fetcher), then answers its caller.
fn finish(hub: &Hub, job: Job, result: Result<Outcome, StoreError>) {
    if let Ok(outcome) = &result {
        if let Some(note) = note_of(&job.write, outcome) {
            hub.metrics()
                .notes_published
                .with_label_values(&[note.kind.label()])
                .inc();
            match (job.write, outcome) {
                (Write::Append { payloads, .. }, Outcome::Done { pos, .. }) => {
                    let records = payloads.into_iter().map(Bytes::from).collect();
                    hub.dispatch_committed(&note, *pos, records);
                }
                _ => hub.dispatch(&note),
            }
        }
    }
    let _ = job.reply.send(result);
}

/// True if Postgres answered the statement with an error (so nothing of it committed).
fn is_refusal(e: &StoreError) -> bool {
    match e {
        StoreError::Db(e) => e.as_database_error().is_some(),
        StoreError::RunNotFound | StoreError::Conflict(_) => true,
    }
}

/// One statement on the committer's connection (taken from the pool if it has none; dropped
/// after anything but a database error, since the connection may be broken).
async fn execute(
    pool: &PgPool,
    conn: &mut Option<PoolConnection<Postgres>>,
    origin: &str,
    writes: &[&Write],
) -> Result<Vec<Outcome>, StoreError> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(pool.acquire().await?),
    };
    let r = match writes {
        [one] => batch::write_one(c, origin, one).await.map(|o| vec![o]),
        _ => batch::write_batch(c, origin, writes).await,
    };
    if r.as_ref().is_err_and(|e| !is_refusal(e)) {
        if let Some(mut c) = conn.take() {
            c.close_on_drop();
        }
    }
    r
}
