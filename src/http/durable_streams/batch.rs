//! Appends as a group-commit [`Family`]: `flowgate.ds_write_batch`
//! (`migrations/0012_ds_group_commit.sql`) runs a batch of POSTs in one transaction, each
//! with its own outcome (a stale epoch, a `Stream-Seq` regression, a closed stream or a
//! content-type mismatch fails only that append), and announces the streams that changed
//! in it. Gathering the batch is [`crate::notify::group`]'s job; this module encodes it,
//! decodes the outcomes, and hands the committed rows to this process's readers.

use std::cmp::Ordering;
use std::future::Future;

use sqlx::PgConnection;

use super::producer::Verdict;
use super::write::{Appended, Prepared};
use super::{hub_key, HUB_NAMESPACE};
use crate::error::StoreError;
use crate::hub::Hub;
use crate::notify::group::Family;
use crate::notify::{Note, NoteKind};

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
    fn of(appends: &[&'a Prepared]) -> Self {
        let mut c = Columns::default();
        for (i, p) in appends.iter().enumerate() {
            let a = &p.append;
            let producer = a.producer.as_ref();
            c.paths.push(&a.path);
            c.types.push(p.media.as_deref());
            c.bodies.push(!a.body.is_empty());
            c.close.push(a.close);
            c.seqs.push(a.seq.as_deref());
            c.pids.push(producer.map(|x| x.id.as_str()));
            c.epochs.push(producer.map(|x| x.epoch));
            c.pseqs.push(producer.map(|x| x.seq));
            c.invalid.push(p.invalid.is_some());
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
    appends: &[&Prepared],
) -> Result<Vec<Appended>, StoreError> {
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
        .map(|(i, p)| {
            let code = codes.get(i).cloned().flatten().unwrap_or_default();
            let (tail, n1, n2) = (at(&tails, i), at(&nums1, i), at(&nums2, i));
            let closed = closes.get(i).copied().flatten().unwrap_or(false);
            Ok(match code.as_str() {
                "ok" => Appended::Done {
                    id: at(&ids, i),
                    tail,
                    closed,
                    new_data: !p.rows.is_empty(),
                    subscribed,
                },
                "dup" => Appended::Duplicate {
                    tail,
                    closed,
                    epoch: n1,
                    seq: n2,
                },
                "missing" => Appended::Missing,
                "gone" => Appended::Gone,
                "closed" => Appended::Closed { tail },
                "type" => Appended::TypeMismatch,
                "seq" => Appended::SeqConflict,
                "stale" => Appended::Producer(Verdict::StaleEpoch { current: n1 }),
                "epoch0" => Appended::Producer(Verdict::EpochSeqNotZero),
                "gap" => Appended::Producer(Verdict::Gap {
                    expected: n1,
                    received: n2,
                }),
                "invalid" => Appended::Invalid(p.invalid.clone().unwrap_or_default()),
                other => {
                    let msg = format!("ds_write_batch answered {other:?}");
                    return Err(StoreError::Db(sqlx::Error::Protocol(msg)));
                }
            })
        })
        .collect()
}

impl Family for Prepared {
    type Outcome = Appended;

    fn execute<'a>(
        conn: &'a mut PgConnection,
        origin: &'a str,
        writes: &'a [&'a Self],
    ) -> impl Future<Output = Result<Vec<Appended>, StoreError>> + Send + 'a {
        write_batch(conn, origin, writes)
    }

    /// New rows go to the stream's fetcher, which broadcasts them without reading them back;
    /// a close wakes it to read the closed flag.
    fn committed(self, hub: &Hub, outcome: &Appended) {
        let Appended::Done { id, tail, .. } = *outcome else {
            return;
        };
        let close = self.append.close;
        if self.rows.is_empty() && !close {
            return;
        }
        let note = Note::new(NoteKind::Stream, HUB_NAMESPACE, hub_key(id), tail);
        hub.metrics()
            .notes_published
            .with_label_values(&[note.kind.label()])
            .inc();
        if !self.rows.is_empty() {
            // Hub offsets are row numbers minus one: the first new row is at the old tail.
            let first = tail - self.rows.len() as i64;
            hub.dispatch_committed(&note, first, self.rows);
        }
        if close {
            hub.dispatch(&note);
        }
    }

    fn size(&self) -> usize {
        Prepared::size(self)
    }

    fn order(&self, other: &Self) -> Ordering {
        self.append.path.cmp(&other.append.path)
    }
}
