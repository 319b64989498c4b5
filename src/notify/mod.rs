//! The wake-up path between processes: NOTIFY payloads, the one LISTEN connection, and the
//! coalescing notifier for this process's own writes.
//!
//! A [`Note`] is only a hint ("stream s of run r has data up to position p"): receivers always
//! re-read the database, so a lost or repeated note can delay nothing but a wake-up. Notes
//! never carry values.

pub mod committer;
pub mod group;
pub mod listener;
pub mod notifier;

pub use group::GroupCommit;
pub use listener::{ListenLoop, Listener, ListenerState, Sink};
pub use notifier::Notifier;

use crate::note::{Note, NoteKind, CHANNEL};
