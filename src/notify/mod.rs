//! The wake-up path between processes: NOTIFY payloads, the one LISTEN connection, and the
//! coalescing notifier for this process's own writes.
//!
//! A [`Note`] is only a hint ("stream s of run r has data up to position p"): receivers always
//! re-read the database, so a lost or repeated note can delay nothing but a wake-up. Notes
//! never carry values.

pub mod group;
pub mod listener;
pub mod notifier;

pub use group::GroupCommit;
pub use listener::{ListenLoop, Listener, ListenerState, Sink};
pub use notifier::Notifier;

/// The channel every flowgate process LISTENs on.
pub const CHANNEL: &str = "flowgate";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// Records were appended to, or the close marker set on, stream `key`; `pos` is the next offset.
    Stream,
    /// Event `key` was set; `pos` is its version.
    Event,
    /// A message on topic `key` was sent; `pos` is its id.
    Message,
    /// The run's status changed.
    Status,
    /// Work was enqueued on queue `key`.
    Queue,
    /// The sending process started: everyone re-reads from their own positions, closing the
    /// window where a crashed process committed data but never announced it.
    Resync,
}

impl NoteKind {
    fn code(self) -> char {
        match self {
            NoteKind::Stream => 's',
            NoteKind::Event => 'e',
            NoteKind::Message => 'm',
            NoteKind::Status => 'w',
            NoteKind::Queue => 'q',
            NoteKind::Resync => 'r',
        }
    }

    /// A metric label.
    pub fn label(self) -> &'static str {
        match self {
            NoteKind::Stream => "stream",
            NoteKind::Event => "event",
            NoteKind::Message => "message",
            NoteKind::Status => "status",
            NoteKind::Queue => "queue",
            NoteKind::Resync => "resync",
        }
    }

    fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "s" => NoteKind::Stream,
            "e" => NoteKind::Event,
            "m" => NoteKind::Message,
            "w" => NoteKind::Status,
            "q" => NoteKind::Queue,
            "r" => NoteKind::Resync,
            _ => return None,
        })
    }
}

/// A wake-up hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What changed.
    pub kind: NoteKind,
    /// The run (empty for queue and resync notes).
    pub run: String,
    /// Stream or event key, message topic or queue name.
    pub key: String,
    /// Position: next offset, version or message id.
    pub pos: i64,
}

impl Note {
    /// A note.
    pub fn new(kind: NoteKind, run: impl Into<String>, key: impl Into<String>, pos: i64) -> Self {
        Self {
            kind,
            run: run.into(),
            key: key.into(),
            pos,
        }
    }

    /// The payload `origin|kind|run|key|pos`.
    pub fn encode(&self, origin: &str) -> String {
        format!(
            "{origin}|{}|{}|{}|{}",
            self.kind.code(),
            self.run,
            self.key,
            self.pos
        )
    }

    /// Parses a payload into its origin and note; `None` for anything malformed.
    pub fn decode(payload: &str) -> Option<(&str, Note)> {
        let mut it = payload.splitn(5, '|');
        let origin = it.next()?;
        let kind = NoteKind::from_code(it.next()?)?;
        let run = it.next()?.to_string();
        let key = it.next()?.to_string();
        let pos = it.next()?.parse().ok()?;
        Some((
            origin,
            Note {
                kind,
                run,
                key,
                pos,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let n = Note::new(NoteKind::Stream, "run-1", "output", 42);
        let p = n.encode("abc");
        assert_eq!(p, "abc|s|run-1|output|42");
        assert_eq!(Note::decode(&p), Some(("abc", n)));
        assert_eq!(Note::decode("x|z|a|b|1"), None);
        assert_eq!(Note::decode("x|s|a|b"), None);
        assert_eq!(Note::decode("x|s|a|b|nope"), None);
    }
}
