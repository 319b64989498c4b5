//! One statement for many writes: `flowgate.write_batch` runs stream appends, event sets,
//! message sends and workflow stream steps in one transaction and announces them in it.
//!
//! Each write gets its own outcome: the function reports "no such run", "closed stream",
//! "reused idempotency key" or a lost fence per write instead of raising, so one bad write
//! never aborts the others. This module only encodes and decodes; gathering concurrent
//! writes into a batch is [`crate::notify::group`]'s job.

use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::PgConnection;

use crate::error::StoreError;

/// Fences a workflow's stream write: the run must be PENDING and owned by `executor`, and
/// the write is recorded as step `step` named `name` in the same transaction.
#[derive(Debug, Clone)]
pub struct StepFence {
    /// The executor that must own the run.
    pub executor: String,
    /// The step number to record.
    pub step: i32,
    /// The step name to record.
    pub name: String,
}

/// One write in a batch. Names are validated by the caller.
#[derive(Debug, Clone)]
pub enum Write {
    /// Append records to stream (`run`, `key`), as a workflow step when `fence` is set.
    Append {
        /// The run.
        run: String,
        /// The stream key.
        key: String,
        /// The records, in order.
        payloads: Vec<Vec<u8>>,
        /// Set for a workflow's own write.
        fence: Option<StepFence>,
    },
    /// Set event `key` of `run`.
    Event {
        /// The run.
        run: String,
        /// The event key.
        key: String,
        /// The new value as JSON text (stored from the text, so big numbers keep every
        /// digit).
        value: Box<RawValue>,
    },
    /// Send a message to `topic` of `run`.
    Send {
        /// The destination run.
        run: String,
        /// The topic.
        topic: String,
        /// The body.
        body: Value,
        /// Makes a repeated send a no-op.
        idempotency_key: Option<String>,
    },
}

impl Write {
    /// Bytes this write carries (to bound a batch's size).
    pub fn size(&self) -> usize {
        match self {
            Write::Append { payloads, .. } => payloads.iter().map(Vec::len).sum::<usize>() + 64,
            // Values were size-checked by the caller; an estimate is enough here.
            Write::Event { .. } | Write::Send { .. } => 256,
        }
    }

    /// The run and key the write concerns (the batch orders its locks by them).
    pub fn target(&self) -> (&str, u8, &str) {
        match self {
            Write::Append {
                run,
                key,
                fence: Some(_),
                ..
            } => (run, 0, key),
            Write::Event { run, key, .. } => (run, 0, key),
            Write::Append { run, key, .. } => (run, 1, key),
            Write::Send { run, topic, .. } => (run, 2, topic),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed: the first offset, the version or the message id; `duplicate` for a
    /// repeated message send.
    Done {
        /// First offset, version or message id.
        pos: i64,
        /// True for a send that repeated an earlier idempotency key.
        duplicate: bool,
    },
    /// The run does not exist.
    RunNotFound,
    /// The stream is closed, or the idempotency key was used for another message.
    Conflict,
    /// The fenced run was cancelled.
    Cancelled,
    /// The fenced run is no longer owned by this executor.
    Superseded,
}

/// Runs one write and sends its note in the same statement: the plain `*_quiet` function
/// plus `pg_notify`, cheaper than [`write_batch`] when there is nothing to share. Fenced
/// writes go through [`write_batch`].
pub async fn write_one(
    conn: &mut PgConnection,
    origin: &str,
    write: &Write,
) -> Result<Outcome, StoreError> {
    let r = match write {
        Write::Append {
            run,
            key,
            payloads,
            fence: None,
        } => sqlx::query!(
            r#"SELECT f AS "pos!", false AS "duplicate!"
                   FROM flowgate.append_quiet($2, $3, $4) AS f,
                   pg_notify('flowgate', $1 || '|s|' || $2 || '|' || $3 || '|' || (f + $5))"#,
            origin,
            run,
            key,
            payloads,
            payloads.len() as i64
        )
        .fetch_one(conn)
        .await
        .map(|r| (r.pos, r.duplicate)),
        Write::Event { run, key, value } => sqlx::query!(
            r#"SELECT v AS "pos!", false AS "duplicate!"
                   FROM flowgate.set_event_quiet($2, $3, $4::text::jsonb) AS v,
                   pg_notify('flowgate', $1 || '|e|' || $2 || '|' || $3 || '|' || v)"#,
            origin,
            run,
            key,
            value.get()
        )
        .fetch_one(conn)
        .await
        .map(|r| (r.pos, r.duplicate)),
        Write::Send {
            run,
            topic,
            body,
            idempotency_key,
        } => sqlx::query!(
            r#"SELECT s.message_id AS "pos!", s.duplicate AS "duplicate!"
                   FROM flowgate.send_quiet($2, $3, $4, $5) AS s
                   LEFT JOIN LATERAL (
                       SELECT pg_notify('flowgate',
                                        $1 || '|m|' || $2 || '|' || $3 || '|' || s.message_id)
                       WHERE NOT s.duplicate) AS n ON true"#,
            origin,
            run,
            topic,
            body,
            idempotency_key.as_deref()
        )
        .fetch_one(conn)
        .await
        .map(|r| (r.pos, r.duplicate)),
        fenced => return Ok(write_batch(conn, origin, &[fenced]).await?.remove(0)),
    };
    match r.map_err(StoreError::from) {
        Ok((pos, duplicate)) => Ok(Outcome::Done { pos, duplicate }),
        Err(StoreError::RunNotFound) => Ok(Outcome::RunNotFound),
        Err(StoreError::Conflict(_)) => Ok(Outcome::Conflict),
        Err(e) => Err(e),
    }
}

/// Runs `writes` in one statement (one transaction unless `conn` is inside one) and sends
/// their notes, tagged with `origin`, in it. Outcomes are in the order of `writes`.
pub async fn write_batch(
    conn: &mut PgConnection,
    origin: &str,
    writes: &[&Write],
) -> Result<Vec<Outcome>, StoreError> {
    let n = writes.len();
    let mut kinds = Vec::with_capacity(n);
    let mut runs = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    // JSON text, cast to jsonb in the statement: event values keep their exact digits.
    let mut values: Vec<Option<String>> = Vec::with_capacity(n);
    let mut extra: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut steps: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut names: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut payloads: Vec<&[u8]> = Vec::new();
    let mut rec_op: Vec<i32> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let (kind, run, key, count, value, x, fence) = match w {
            Write::Append {
                run,
                key,
                payloads: p,
                fence,
            } => {
                payloads.extend(p.iter().map(Vec::as_slice));
                rec_op.extend(std::iter::repeat_n(i as i32 + 1, p.len()));
                let kind = if fence.is_some() { "w" } else { "s" };
                let exec = fence.as_ref().map(|f| f.executor.as_str());
                (kind, run, key, p.len() as i32, None, exec, fence.as_ref())
            }
            Write::Event { run, key, value } => {
                ("e", run, key, 0, Some(value.get().to_string()), None, None)
            }
            Write::Send {
                run,
                topic,
                body,
                idempotency_key,
            } => (
                "m",
                run,
                topic,
                0,
                Some(body.to_string()),
                idempotency_key.as_deref(),
                None,
            ),
        };
        kinds.push(kind);
        runs.push(run.as_str());
        keys.push(key.as_str());
        counts.push(count);
        values.push(value);
        extra.push(x);
        steps.push(fence.map(|f| f.step));
        names.push(fence.map(|f| f.name.as_str()));
    }
    let row = sqlx::query!(
        r#"SELECT positions AS "positions!: Vec<Option<i64>>", flags AS "flags!: Vec<Option<bool>>",
                  errors AS "errors!: Vec<Option<String>>"
           FROM flowgate.write_batch($1, $2, $3, $4, $5, $6::text[]::jsonb[], $7, $8, $9, $10, $11)"#,
        origin,
        &kinds as &[&str],
        &runs as &[&str],
        &keys as &[&str],
        &counts as &[i32],
        &values as &[Option<String>],
        &extra as &[Option<&str>],
        &steps as &[Option<i32>],
        &names as &[Option<&str>],
        &payloads as &[&[u8]],
        &rec_op as &[i32]
    )
    .fetch_one(conn)
    .await?;
    let (positions, flags, errors) = (row.positions, row.flags, row.errors);
    Ok(outcomes(n, positions, flags, errors))
}

/// Per-write outcomes from the function's result arrays.
fn outcomes(
    n: usize,
    positions: Vec<Option<i64>>,
    flags: Vec<Option<bool>>,
    errors: Vec<Option<String>>,
) -> Vec<Outcome> {
    (0..n)
        .map(|i| {
            let err = errors.get(i).cloned().flatten();
            match err.as_deref() {
                None => Outcome::Done {
                    pos: positions.get(i).copied().flatten().unwrap_or(0),
                    duplicate: flags.get(i).copied().flatten().unwrap_or(false),
                },
                Some("FG404") => Outcome::RunNotFound,
                Some("CANCELLED") => Outcome::Cancelled,
                Some("SUPERSEDED") => Outcome::Superseded,
                Some(_) => Outcome::Conflict,
            }
        })
        .collect()
}
