//! One statement for many Durable Streams appends: `flowgate.ds_write_batch`
//! (`migrations/0012_ds_group_commit.sql`) runs a batch of POSTs in one transaction, each
//! with its own outcome (a stale epoch, a `Stream-Seq` regression, a closed stream or a
//! content-type mismatch fails only that append), and announces the streams that changed
//! in it. This module only encodes and decodes; gathering the batch is
//! [`crate::notify::group`]'s job, the protocol around it the HTTP layer's.

use bytes::Bytes;
use sqlx::PgConnection;

use crate::error::StoreError;

/// An append, checked and split into rows by the caller.
#[derive(Debug, Clone)]
pub struct DsAppend {
    /// Stream path.
    pub path: String,
    /// The request's media type (lower case, no parameters).
    pub media: Option<String>,
    /// The body is not empty (then the media type must be the stream's).
    pub has_body: bool,
    /// `Stream-Closed: true`.
    pub close: bool,
    /// `Stream-Seq`.
    pub seq: Option<Vec<u8>>,
    /// Producer id, epoch and sequence number.
    pub producer: Option<(String, i64, i64)>,
    /// The body could not be split into rows (reported only if every other check passes).
    pub invalid: bool,
    /// Rows it adds (slices of the body).
    pub rows: Vec<Bytes>,
}

impl DsAppend {
    /// Bytes it carries (to bound a batch's size).
    pub fn size(&self) -> usize {
        self.rows.iter().map(Bytes::len).sum::<usize>() + self.path.len() + 64
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DsOutcome {
    /// Applied (or a close-only on a closed stream).
    Done {
        /// Stream id.
        id: i64,
        /// New tail.
        tail: i64,
        /// Closed now.
        closed: bool,
        /// Some subscription exists (the caller runs the wake logic for new data).
        subscribed: bool,
    },
    /// A producer retry of something already applied.
    Duplicate {
        /// Tail.
        tail: i64,
        /// Closed.
        closed: bool,
        /// Current epoch.
        epoch: i64,
        /// Highest accepted seq.
        seq: i64,
    },
    /// No such stream (or expired).
    Missing,
    /// Deleted while forks remain.
    Gone,
    /// Closed.
    Closed {
        /// Tail.
        tail: i64,
    },
    /// Content type differs from the stream's.
    TypeMismatch,
    /// `Stream-Seq` not above the last one.
    SeqConflict,
    /// An older producer epoch.
    StaleEpoch {
        /// Current epoch.
        current: i64,
    },
    /// A new producer epoch must start at sequence 0.
    EpochSeqNotZero,
    /// A gap in the producer's sequence.
    Gap {
        /// Expected seq.
        expected: i64,
        /// Received seq.
        received: i64,
    },
    /// The body could not be split.
    Invalid,
}

/// The function's result: codes, ids, tails, closed flags, two numbers, subscribed.
type Row = (
    Vec<Option<String>>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Vec<Option<bool>>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Option<bool>,
);

/// The statement's inputs, one array per column.
#[derive(Default)]
struct Columns<'a> {
    paths: Vec<&'a str>,
    types: Vec<Option<&'a str>>,
    bodies: Vec<bool>,
    close: Vec<bool>,
    seqs: Vec<Option<&'a [u8]>>,
    pids: Vec<Option<&'a str>>,
    epochs: Vec<Option<i64>>,
    pseqs: Vec<Option<i64>>,
    invalid: Vec<bool>,
    counts: Vec<i32>,
    payloads: Vec<&'a [u8]>,
    rec_op: Vec<i32>,
}

impl<'a> Columns<'a> {
    fn of(appends: &[&'a DsAppend]) -> Self {
        let mut c = Columns::default();
        for (i, p) in appends.iter().enumerate() {
            let producer = p.producer.as_ref();
            c.paths.push(&p.path);
            c.types.push(p.media.as_deref());
            c.bodies.push(p.has_body);
            c.close.push(p.close);
            c.seqs.push(p.seq.as_deref());
            c.pids.push(producer.map(|x| x.0.as_str()));
            c.epochs.push(producer.map(|x| x.1));
            c.pseqs.push(producer.map(|x| x.2));
            c.invalid.push(p.invalid);
            c.counts.push(p.rows.len() as i32);
            c.payloads.extend(p.rows.iter().map(|r| &r[..]));
            c.rec_op
                .extend(std::iter::repeat_n(i as i32 + 1, p.rows.len()));
        }
        c
    }
}

/// Runs `appends` in one statement (one transaction) and announces them, tagged with
/// `origin`, in it. Outcomes are in the order of `appends`.
pub async fn write_batch(
    conn: &mut PgConnection,
    origin: &str,
    appends: &[&DsAppend],
) -> Result<Vec<DsOutcome>, StoreError> {
    let c = Columns::of(appends);
    let (codes, ids, tails, closes, nums1, nums2, subscribed): Row = sqlx::query_as(
        "SELECT codes, ids, tails, closes, nums1, nums2, subscribed
         FROM flowgate.ds_write_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(origin)
    .bind(&c.paths)
    .bind(&c.types)
    .bind(&c.bodies)
    .bind(&c.close)
    .bind(&c.seqs)
    .bind(&c.pids)
    .bind(&c.epochs)
    .bind(&c.pseqs)
    .bind(&c.invalid)
    .bind(&c.counts)
    .bind(&c.payloads)
    .bind(&c.rec_op)
    .fetch_one(conn)
    .await?;
    let at = |v: &[Option<i64>], i: usize| v.get(i).copied().flatten().unwrap_or(0);
    let subscribed = subscribed.unwrap_or(false);
    appends
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let code = codes.get(i).cloned().flatten().unwrap_or_default();
            let (tail, n1, n2) = (at(&tails, i), at(&nums1, i), at(&nums2, i));
            let closed = closes.get(i).copied().flatten().unwrap_or(false);
            Ok(match code.as_str() {
                "ok" => DsOutcome::Done {
                    id: at(&ids, i),
                    tail,
                    closed,
                    subscribed,
                },
                "dup" => DsOutcome::Duplicate {
                    tail,
                    closed,
                    epoch: n1,
                    seq: n2,
                },
                "missing" => DsOutcome::Missing,
                "gone" => DsOutcome::Gone,
                "closed" => DsOutcome::Closed { tail },
                "type" => DsOutcome::TypeMismatch,
                "seq" => DsOutcome::SeqConflict,
                "stale" => DsOutcome::StaleEpoch { current: n1 },
                "epoch0" => DsOutcome::EpochSeqNotZero,
                "gap" => DsOutcome::Gap {
                    expected: n1,
                    received: n2,
                },
                "invalid" => DsOutcome::Invalid,
                other => {
                    let msg = format!("ds_write_batch answered {other:?}");
                    return Err(StoreError::Db(sqlx::Error::Protocol(msg)));
                }
            })
        })
        .collect()
}
