//! DBOS's own wake-ups, turned into hub notes.
//!
//! DBOS notifies `dbos_streams_channel` and `dbos_workflow_events_channel` after commit
//! (coalesced, ~10 ms) and `dbos_notifications_channel` from a trigger, each with payload
//! `<workflow_uuid>::<key>`. Workflow ids may themselves contain `::`, so a payload is only a
//! hint: every split point is tried, and the hub ignores the ones naming no live topic.

use crate::hub::Hub;
use crate::note::{Note, NoteKind};
use crate::notify::Sink;

/// The channels DBOS notifies, and the optional status trigger's.
pub const CHANNELS: [&str; 4] = [
    "dbos_streams_channel",
    "dbos_workflow_events_channel",
    "dbos_notifications_channel",
    super::trigger::STATUS_CHANNEL,
];

/// Longest payload looked at (DBOS ids and keys are bounded; NOTIFY caps at 8000 bytes).
const MAX_PAYLOAD: usize = 8000;

/// Feeds the DBOS hub.
pub struct DbosSink {
    /// The DBOS hub.
    pub hub: Hub,
}

impl Sink for DbosSink {
    fn connected(&self) {
        self.hub.resync_all();
    }

    fn notify(&self, channel: &str, payload: &str) {
        let kind = match channel {
            "dbos_streams_channel" => NoteKind::Stream,
            "dbos_workflow_events_channel" => NoteKind::Event,
            "dbos_notifications_channel" => NoteKind::Message,
            super::trigger::STATUS_CHANNEL => {
                // The optional status trigger: the payload is the whole workflow id.
                self.hub.wake_run(payload);
                return;
            }
            _ => return,
        };
        if payload.len() > MAX_PAYLOAD {
            return;
        }
        for (run, key) in splits(payload) {
            self.hub.dispatch(&Note::new(kind, run, key, 0));
        }
    }
}

/// Every `(workflow, key)` reading of a payload.
pub fn splits(payload: &str) -> impl Iterator<Item = (&str, &str)> {
    payload
        .match_indices("::")
        .map(move |(i, _)| (&payload[..i], &payload[i + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split() {
        let s: Vec<_> = splits("wf::a::out").collect();
        assert_eq!(s, vec![("wf", "a::out"), ("wf::a", "out")]);
        assert_eq!(splits("nothing").count(), 0);
    }
}
