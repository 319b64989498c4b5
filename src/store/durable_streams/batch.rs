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
    // Arrays of nullable or borrowed elements have no checked Rust mapping: their types are
    // stated (`as &[…]`); the statement and the other arguments are checked.
    let row = sqlx::query!(
        r#"SELECT codes AS "codes!: Vec<Option<String>>", ids AS "ids!: Vec<Option<i64>>",
                  tails AS "tails!: Vec<Option<i64>>", closes AS "closes!: Vec<Option<bool>>",
                  nums1 AS "nums1!: Vec<Option<i64>>", nums2 AS "nums2!: Vec<Option<i64>>",
                  subscribed
           FROM flowgate.ds_write_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
        origin,
        &c.paths as &[&str],
        &c.types as &[Option<&str>],
        &c.bodies,
        &c.close,
        &c.seqs as &[Option<&[u8]>],
        &c.pids as &[Option<&str>],
        &c.epochs as &[Option<i64>],
        &c.pseqs as &[Option<i64>],
        &c.invalid,
        &c.counts,
        &c.payloads as &[&[u8]],
        &c.rec_op,
    )
    .fetch_one(conn)
    .await?;
    let (codes, ids, tails, closes) = (row.codes, row.ids, row.tails, row.closes);
    let (nums1, nums2) = (row.nums1, row.nums2);
    let at = |v: &[Option<i64>], i: usize| v.get(i).copied().flatten().unwrap_or(0);
    let subscribed = row.subscribed.unwrap_or(false);
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
