//! The run change feed: which runs were created or changed status (or tags) since a
//! reader's position, read in one statement with the position to continue from.
//!
//! A position is a Postgres snapshot (`xmin:xmax:xip,…`). Every change stamps the run row
//! with its transaction id (`change_xid`, set by a trigger); a change is new to a reader
//! exactly when that transaction is not visible in the reader's snapshot. Unlike a counter,
//! this never skips a transaction that commits after a later one, and never repeats one.

use std::fmt;

use super::runs::{ListQuery, RunSummary};
use super::{RunStatus, Store};
use crate::error::StoreError;

/// Longest snapshot text accepted from a client.
pub const MAX_SNAPSHOT_LEN: usize = 4096;

/// A reader's position in the feed: the transactions it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    xmin: u64,
    xmax: u64,
    xip: Vec<u64>,
}

impl Snapshot {
    /// Parses `xmin:xmax:xip,…` as Postgres prints it; `None` if malformed.
    pub fn parse(s: &str) -> Option<Snapshot> {
        if s.len() > MAX_SNAPSHOT_LEN {
            return None;
        }
        let mut it = s.splitn(3, ':');
        let xmin: u64 = it.next()?.parse().ok()?;
        let xmax: u64 = it.next()?.parse().ok()?;
        let rest = it.next()?;
        let mut xip = Vec::new();
        for x in rest.split(',').filter(|x| !x.is_empty()) {
            let x: u64 = x.parse().ok()?;
            if x < xmin || x >= xmax || xip.last().is_some_and(|&l| l >= x) {
                return None;
            }
            xip.push(x);
        }
        (xmin >= 1 && xmin <= xmax && xmax < 1 << 62).then_some(Snapshot { xmin, xmax, xip })
    }

    /// True if transaction `x` is visible (committed before the snapshot was taken).
    pub fn sees(&self, x: u64) -> bool {
        x < self.xmin || (x < self.xmax && self.xip.binary_search(&x).is_err())
    }

    /// True if this snapshot sees every transaction `other` sees.
    pub fn covers(&self, other: &Snapshot) -> bool {
        self.xmax >= other.xmax
            && self
                .xip
                .iter()
                .all(|x| *x >= other.xmax || other.xip.binary_search(x).is_ok())
    }

    /// This snapshot, but not yet having seen `pending` (transactions it sees whose rows
    /// are still to be delivered): the position after a prefix of a batch.
    pub fn without(&self, pending: &[u64]) -> Snapshot {
        let mut xip = self.xip.clone();
        xip.extend(pending.iter().copied().filter(|x| self.sees(*x)));
        xip.sort_unstable();
        xip.dedup();
        let xmin = xip.first().copied().unwrap_or(self.xmax).min(self.xmin);
        Snapshot {
            xmin,
            xmax: self.xmax,
            xip,
        }
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, x) in self.xip.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

/// A changed run and the transaction that changed it.
#[derive(Debug, Clone)]
pub struct RunChange {
    /// The transaction id of the change.
    pub xid: u64,
    /// The run as it is now.
    pub run: RunSummary,
}

/// The position `rows` are read at (every row carries it; the statements return one at least).
fn position(rows: &[ChangeRow]) -> Result<Snapshot, StoreError> {
    let first = rows
        .first()
        .ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
    snapshot_of(&first.snap)
}

/// [`ChangeRow`]s: the position `s.snap` (`$6`, or the current snapshot) with each run `w`
/// that `$from` (`FROM s LEFT JOIN … w …`) joins to it; one row of NULLs when none.
macro_rules! change_rows {
    ($from:literal; $($arg:expr),*) => {
        sqlx::query_as!(
            ChangeRow,
            r#"WITH s AS (SELECT coalesce($6::text::pg_snapshot, pg_current_snapshot()) AS snap)
             SELECT s.snap::text AS "snap!", w.change_xid::text AS "xid?", w.id AS "id?",
                    w.workflow AS "workflow?", w.status AS "status?: RunStatus",
                    w.outcome AS "outcome?", w.queue AS "queue?", w.parent_id AS "parent_id?",
                    w.tags AS "tags?", w.attempts AS "attempts?", w.created_at AS "created_at?",
                    w.updated_at AS "updated_at?""# + $from,
            $($arg),*
        )
    };
}

struct ChangeRow {
    snap: String,
    xid: Option<String>,
    id: Option<String>,
    workflow: Option<String>,
    status: Option<RunStatus>,
    outcome: Option<String>,
    queue: Option<String>,
    parent_id: Option<String>,
    tags: Option<Vec<String>>,
    attempts: Option<i32>,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ChangeRow {
    fn change(self) -> Option<RunChange> {
        Some(RunChange {
            xid: self.xid?.parse().ok()?,
            run: RunSummary {
                id: self.id?,
                workflow: self.workflow?,
                status: self.status?,
                outcome: self.outcome,
                queue: self.queue,
                parent_id: self.parent_id,
                tags: self.tags.unwrap_or_default(),
                attempts: self.attempts.unwrap_or(0),
                created_at: self.created_at?,
                updated_at: self.updated_at?,
            },
        })
    }
}

fn snapshot_of(text: &str) -> Result<Snapshot, StoreError> {
    Snapshot::parse(text).ok_or_else(|| {
        StoreError::Db(sqlx::Error::Protocol(format!(
            "unparsable snapshot {text:?}"
        )))
    })
}

impl Store {
    /// The current position (nothing before it is new).
    pub async fn feed_position(&self) -> Result<Snapshot, StoreError> {
        let s = sqlx::query_scalar!(r#"SELECT pg_current_snapshot()::text AS "snap!""#)
            .fetch_one(&self.pool)
            .await?;
        snapshot_of(&s)
    }

    /// Runs changed since `since` (in transaction order) that match `f`, and the position
    /// after them, read in one statement (so the position and the rows agree).
    pub async fn run_changes(
        &self,
        since: &Snapshot,
        f: &ListQuery,
    ) -> Result<(Vec<RunChange>, Snapshot), StoreError> {
        self.run_changes_upto(since, None, f).await
    }

    /// Like [`Store::run_changes`], up to snapshot `upto` (taken on the primary) instead of
    /// this server's own: changes visible in `upto` only, and `upto` as the position.
    pub async fn run_changes_upto(
        &self,
        since: &Snapshot,
        upto: Option<&str>,
        f: &ListQuery,
    ) -> Result<(Vec<RunChange>, Snapshot), StoreError> {
        let rows = change_rows!(
            r#"
             FROM s LEFT JOIN flowgate.workflows w
               ON w.change_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
              AND NOT pg_visible_in_snapshot(w.change_xid, $1::text::pg_snapshot)
              AND pg_visible_in_snapshot(w.change_xid, s.snap)
              AND ($2::text IS NULL OR w.status = $2)
              AND ($3::text IS NULL OR w.workflow = $3)
              AND ($4::text IS NULL OR w.tags @> ARRAY[$4])
              AND ($5::text[] IS NULL OR w.tags && $5)
             ORDER BY w.change_xid, w.id"#;
            since.to_string(),
            f.status as Option<RunStatus>,
            f.workflow,
            f.tag,
            f.any_tag.as_deref(),
            upto
        )
        .fetch_all(&self.pool)
        .await?;
        let to = position(&rows)?;
        Ok((rows.into_iter().filter_map(ChangeRow::change).collect(), to))
    }

    /// The newest `f.limit` runs matching `f`, and the position they are current at.
    pub async fn runs_now(&self, f: &ListQuery) -> Result<(Vec<RunSummary>, Snapshot), StoreError> {
        self.runs_now_at(f, None).await
    }

    /// Like [`Store::runs_now`], as of snapshot `upto` (taken on the primary): a run whose
    /// last change is newer is left out (the feed delivers it after `upto`).
    pub async fn runs_now_at(
        &self,
        f: &ListQuery,
        upto: Option<&str>,
    ) -> Result<(Vec<RunSummary>, Snapshot), StoreError> {
        let rows = change_rows!(
            r#"
             FROM s LEFT JOIN LATERAL (
                 SELECT * FROM flowgate.workflows
                 WHERE ($1::text IS NULL OR status = $1)
                   AND ($2::text IS NULL OR workflow = $2)
                   AND ($3::text IS NULL OR tags @> ARRAY[$3])
                   AND ($4::text[] IS NULL OR tags && $4)
                   AND ($6::text IS NULL OR change_xid IS NULL
                        OR pg_visible_in_snapshot(change_xid, s.snap))
                 ORDER BY created_at DESC, id DESC LIMIT $5
             ) w ON true ORDER BY w.created_at DESC, w.id DESC"#;
            f.status as Option<RunStatus>,
            f.workflow,
            f.tag,
            f.any_tag.as_deref(),
            f.limit,
            upto
        )
        .fetch_all(&self.pool)
        .await?;
        let to = position(&rows)?;
        let runs = rows
            .into_iter()
            .filter_map(|r| {
                let mut r = r;
                r.xid = Some(r.xid.unwrap_or_else(|| "0".into()));
                r.change()
            })
            .map(|c| c.run)
            .collect();
        Ok((runs, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_postgres_prints_and_refuses_the_rest() {
        let s = Snapshot::parse("10:20:12,15").unwrap();
        assert_eq!(s.to_string(), "10:20:12,15");
        assert!(Snapshot::parse("10:20:").is_some());
        for bad in [
            "",
            "a:b:",
            "20:10:",
            "10:20:25",
            "10:20:15,12",
            "10:20:9",
            "0:0:",
        ] {
            assert!(Snapshot::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn visibility_and_cover() {
        let a = Snapshot::parse("10:20:12,15").unwrap();
        assert!(a.sees(9) && a.sees(11) && !a.sees(12) && !a.sees(20));
        let later = Snapshot::parse("12:25:12,22").unwrap();
        assert!(later.covers(&a) && !a.covers(&later));
        assert!(a.covers(&a));
    }

    #[test]
    fn without_keeps_pending_unseen() {
        let a = Snapshot::parse("10:20:15").unwrap();
        let p = a.without(&[11, 17]);
        assert!(!p.sees(11) && !p.sees(15) && !p.sees(17) && p.sees(12));
        assert_eq!(p.to_string(), "10:20:11,15,17");
        assert!(Snapshot::parse(&p.to_string()).is_some());
    }
}
