//! The hub's reads through the router, each with what it must see to be fresh.

use super::{Mode, Replicas};
use crate::error::StoreError;
use crate::note::TopicKey;
use crate::store::{EventRow, PageAt, RunRow, Store, StreamInfo, StreamPage};

/// Set in a stream note's position when the note announces the close marker, so that a
/// reader waiting for that note's position also waits for the marker.
pub const CLOSED_FLAG: i64 = 1 << 56;

/// What a read must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Whatever is there (an absence is confirmed against everything committed).
    Any,
    /// At least this position: a stream's next offset (with [`CLOSED_FLAG`] for the close
    /// marker) or a run's event clock.
    AtLeast(i64),
    /// Everything committed before the read began.
    Everything,
}

impl Want {
    /// The stricter of two demands.
    pub fn max(self, other: Want) -> Want {
        match (self, other) {
            (Want::Everything, _) | (_, Want::Everything) => Want::Everything,
            (Want::AtLeast(a), Want::AtLeast(b)) => Want::AtLeast(a.max(b)),
            (Want::AtLeast(a), Want::Any) | (Want::Any, Want::AtLeast(a)) => Want::AtLeast(a),
            (Want::Any, Want::Any) => Want::Any,
        }
    }

    /// How a read showing this is settled.
    pub fn mode(self) -> Mode {
        match self {
            Want::Any => Mode::Confirm,
            Want::AtLeast(_) => Mode::Poll,
            Want::Everything => Mode::Fenced,
        }
    }
}

/// True if `page` shows stream position `want` (see [`CLOSED_FLAG`]).
pub fn page_shows(page: &StreamPage, want: Want) -> bool {
    if page.gone {
        return false;
    }
    match want {
        Want::AtLeast(p) if p & CLOSED_FLAG != 0 => page.closed,
        Want::AtLeast(p) => page.closed || page.next >= p,
        _ => true,
    }
}

impl Replicas {
    /// A page of a stream (workflow stream or Durable Stream).
    pub async fn read_stream(&self, at: PageAt<'_>, want: Want) -> Result<StreamPage, StoreError> {
        self.read(
            |s| async move { flowgate_page(&s, at).await },
            |p| page_shows(p, want),
            want.mode(),
        )
        .await
    }

    /// Events above `after` and the event clock, which must reach `want`.
    pub async fn events_after(
        &self,
        run: &str,
        after: i64,
        want: Want,
    ) -> Result<(Vec<EventRow>, Option<i64>), StoreError> {
        self.read(
            |s| async move { s.events_after(run, after).await },
            |(_, clock)| match want {
                Want::AtLeast(p) => clock.is_some_and(|c| c >= p),
                _ => clock.is_some(),
            },
            want.mode(),
        )
        .await
    }

    /// One event (an absence is confirmed).
    pub async fn get_event(&self, run: &str, key: &str) -> Result<Option<EventRow>, StoreError> {
        self.read(
            |s| async move { s.get_event(run, key).await },
            Option::is_some,
            Mode::Confirm,
        )
        .await
    }

    /// The run's status row, including every change committed before the call.
    pub async fn get_run(&self, run: &str) -> Result<Option<RunRow>, StoreError> {
        self.read(
            |s| async move { s.get_run(run).await },
            |_| true,
            Mode::Fenced,
        )
        .await
    }

    /// True if the run exists (an absence is confirmed).
    pub async fn run_exists(&self, run: &str) -> Result<bool, StoreError> {
        self.read(
            |s| async move { s.run_exists_str(run).await },
            |found| *found,
            Mode::Confirm,
        )
        .await
    }

    /// The run's streams, including every one created before the call.
    pub async fn list_streams(&self, run: &str, limit: i64) -> Result<Vec<StreamInfo>, StoreError> {
        self.read(
            |s| async move { s.list_streams(run, limit).await },
            |_| true,
            Mode::Fenced,
        )
        .await
    }
}

/// A page of a workflow stream or (in the hub's namespace) a Durable Stream.
pub async fn flowgate_page(store: &Store, at: PageAt<'_>) -> Result<StreamPage, StoreError> {
    match TopicKey::of(at.run, at.key) {
        TopicKey::Durable(id) => store.ds_page(id, at.from, at.limit).await,
        TopicKey::Invalid => Ok(StreamPage::default()),
        _ => store.read_stream(at).await,
    }
}
