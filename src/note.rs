//! Wake-up notes: what changed, where, up to which position. A [`Note`] is only a hint
//! ("stream s of run r has data up to position p"): receivers always re-read the database, so
//! a lost or repeated note can delay nothing but a wake-up. Notes never carry values.
//!
//! A leaf module: the store builds notes, the notifier and listener carry them between
//! processes, the hub turns them into reads ([`TopicKey`] says which).

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
    /// A workflow step of the run was recorded; `pos` is its number.
    Step,
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
            NoteKind::Step => 'p',
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
            NoteKind::Step => "step",
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
            "p" => NoteKind::Step,
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

/// Run namespace of Durable Streams topics: their notes carry this as `run` and the stream
/// id as `key`.
pub const DURABLE_NAMESPACE: &str = "~ds";

/// Which topic a note (or a reader) addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKey<'a> {
    /// A workflow stream `key` of run `run`.
    Stream {
        /// The run.
        run: &'a str,
        /// The stream key.
        key: &'a str,
    },
    /// A Durable Streams stream, by id.
    Durable(i64),
    /// A `~ds` topic whose key is not a stream id (nothing to read).
    Invalid,
}

impl<'a> TopicKey<'a> {
    /// The topic a (run, key) pair addresses.
    pub fn of(run: &'a str, key: &'a str) -> Self {
        if run == DURABLE_NAMESPACE {
            key.parse().map_or(TopicKey::Invalid, TopicKey::Durable)
        } else {
            TopicKey::Stream { run, key }
        }
    }
}

/// The hub key of Durable Streams stream `id`.
pub fn durable_key(id: i64) -> String {
    id.to_string()
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

    #[test]
    fn topic_keys() {
        assert_eq!(TopicKey::of("~ds", "17"), TopicKey::Durable(17));
        assert_eq!(TopicKey::of("~ds", "x"), TopicKey::Invalid);
        assert_eq!(
            TopicKey::of("run", "out"),
            TopicKey::Stream {
                run: "run",
                key: "out"
            }
        );
    }
}
