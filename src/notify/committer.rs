//! The group committer's task (see [`super::group`]): gathers queued writes into batches,
//! runs each batch as one statement per [`Family`], answers every caller with its own
//! outcome, and paces itself so closed-loop writers commit together.

use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};

use super::group::Family;
use crate::error::StoreError;
use crate::hub::Hub;
use crate::store::batch::Write;
use crate::store::durable_streams::DsAppend;

/// Writes in one batch, at most.
const MAX_WRITES: usize = 1024;
/// Payload bytes in one batch, at most (a single larger write still goes alone).
const MAX_BYTES: usize = 4 << 20;
/// The committer keeps its connection while writes keep coming; idle this long, it gives it
/// back to the pool (which checks it before the next use).
const KEEP_CONN: Duration = Duration::from_millis(250);
/// The longest the committer waits for more writes to join a batch.
const MAX_LINGER: Duration = Duration::from_millis(2);

/// A write and where its outcome goes.
pub struct Pending<W: Family> {
    /// The write.
    pub write: W,
    /// Its caller.
    pub reply: oneshot::Sender<Result<W::Outcome, StoreError>>,
}

/// A queued write of either family.
pub enum Job {
    /// Workflow streams, events and messages.
    Flow(Pending<Write>),
    /// A Durable Streams append.
    Durable(Pending<DsAppend>),
}

impl Job {
    fn size(&self) -> usize {
        match self {
            Job::Flow(p) => p.write.size(),
            Job::Durable(p) => Family::size(&p.write),
        }
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

/// The committer's connection, kept between batches while writes keep coming.
type Conn = Option<PoolConnection<Postgres>>;

/// The committer: one batch in flight; whatever queued meanwhile is the next batch.
///
/// With several writers in a closed loop, taking only what has queued splits them into
/// two cohorts that alternate, each paying a whole commit. So when the last batch showed
/// concurrency, the committer waits a little (never more than half a batch's time, and
/// never with a lone writer) for the writers it just answered, and commits them together.
pub async fn run(hub: Hub, origin: String, mut rx: mpsc::Receiver<Job>) {
    let pool = hub.store().pool.clone();
    let mut conn: Conn = None;
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
        hub.metrics().commit_batch_writes.observe(n as f64);
        let started = Instant::now();
        let (mut flow, mut durable) = (Vec::new(), Vec::new());
        for j in jobs {
            match j {
                Job::Flow(p) => flow.push(p),
                Job::Durable(p) => durable.push(p),
            }
        }
        let ctx = Ctx {
            hub: &hub,
            pool: &pool,
            origin: &origin,
        };
        // Each family is its own statement; a batch rarely holds both.
        run_family(&ctx, &mut conn, flow).await;
        run_family(&ctx, &mut conn, durable).await;
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
    let mut bytes = first.size();
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
        bytes += j.size();
        if bytes > MAX_BYTES {
            *carry = Some(j);
            break;
        }
        jobs.push(j);
    }
    jobs
}

/// Waits for the next write, giving the connection back if none comes soon.
async fn next_job(rx: &mut mpsc::Receiver<Job>, conn: &mut Conn, pool: &PgPool) -> Option<Job> {
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

/// What every batch runs with.
struct Ctx<'a> {
    hub: &'a Hub,
    pool: &'a PgPool,
    origin: &'a str,
}

/// Runs one family's part of a batch; if the database refused it as a whole (a race the
/// function does not report per write, a deadlock), runs each write alone so only the
/// culprit fails.
async fn run_family<W: Family>(ctx: &Ctx<'_>, conn: &mut Conn, mut jobs: Vec<Pending<W>>) {
    if jobs.is_empty() {
        return;
    }
    // A stable sort: locks are taken in the family's order across batches and processes,
    // and writes to one stream keep their queue order.
    jobs.sort_by(|a, b| a.write.order(&b.write));
    let writes: Vec<&W> = jobs.iter().map(|j| &j.write).collect();
    match execute(ctx, conn, &writes).await {
        Ok(outcomes) => {
            for (j, o) in jobs.into_iter().zip(outcomes) {
                finish(ctx.hub, j, Ok(o));
            }
        }
        Err(e) if jobs.len() > 1 && is_refusal(&e) => {
            tracing::debug!(error = %e, writes = jobs.len(), "batch refused; writing one by one");
            for j in jobs {
                let r = execute(ctx, conn, &[&j.write]).await;
                finish(ctx.hub, j, r.map(|mut o| o.remove(0)));
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

/// Wakes local subscribers for a committed write, then answers its caller.
fn finish<W: Family>(hub: &Hub, job: Pending<W>, result: Result<W::Outcome, StoreError>) {
    if let Ok(outcome) = &result {
        job.write.committed(hub, outcome);
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
async fn execute<W: Family>(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    writes: &[&W],
) -> Result<Vec<W::Outcome>, StoreError> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(ctx.pool.acquire().await?),
    };
    let r = W::execute(c, ctx.origin, writes).await;
    if r.as_ref().is_err_and(|e| !is_refusal(e)) {
        if let Some(mut c) = conn.take() {
            c.close_on_drop();
        }
    }
    r
}
