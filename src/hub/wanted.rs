//! What the notes announced to a topic's fetcher: the highest position known to exist, or
//! a fence (a wake-up that names none), turned into the [`Want`] of its next read.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::replica::Want;

/// The positions announced to one fetcher since its last read.
#[derive(Debug, Default)]
pub struct Wanted {
    /// The highest position announced by notes (a standby read waits until it shows it).
    at_least: AtomicI64,
    /// Set by a wake-up without a position: the next read must see every commit so far.
    fence: AtomicBool,
}

impl Wanted {
    /// Position `pos` exists (0: unknown, which fences).
    pub fn announce(&self, pos: i64) {
        if pos > 0 {
            self.at_least.fetch_max(pos, Ordering::SeqCst);
        } else {
            self.fence();
        }
    }

    /// The next read must see every commit so far.
    pub fn fence(&self) {
        self.fence.store(true, Ordering::SeqCst);
    }

    /// What the next read after `upto` must see; clears the fence.
    pub fn take(&self, upto: i64) -> Want {
        let want = Want::AtLeast(self.at_least.load(Ordering::SeqCst).max(upto));
        if self.fence.swap(false, Ordering::SeqCst) {
            Want::Everything
        } else {
            want
        }
    }
}
