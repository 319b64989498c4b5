//! The `/live` position: what a client has seen of a run, carried as the SSE `id:` so that
//! `Last-Event-ID` resumes exactly where the previous connection stopped.
//!
//! On the wire it is base64url (no padding) of compact JSON
//! `{"v": event version, "s": {key: next offset}, "e": [ended keys], "st": status,
//! "p": next step}`, with
//! empty parts left out. Clients treat it as opaque. Parsing checks its shape and limits
//! only; [`Cursor::check_against`] checks it against the run's rows.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::Key;
use crate::store::{RunStatus, StreamInfo};

/// Most streams a live connection follows (and a cursor may name).
pub const MAX_LIVE_STREAMS: usize = 32;

/// Longest accepted cursor text, in bytes.
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// What a live client has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Highest event version delivered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub v: i64,
    /// Next offset to deliver, per stream (absent = 0).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub s: BTreeMap<String, i64>,
    /// Streams whose close was delivered.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub e: BTreeSet<String>,
    /// Last status delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub st: Option<String>,
    /// Next timeline step to deliver (steps numbered below it were delivered).
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub p: i32,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A 400 about the cursor in `field`.
fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_cursor",
        format!("{field}: {why}"),
    )
    .with_field(field)
}

impl Cursor {
    /// Parses a cursor taken from `field` (`Last-Event-ID` or `cursor`).
    pub fn parse(field: &str, text: &str) -> Result<Cursor, ApiError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad(field, format!("longer than {MAX_CURSOR_LEN} bytes")));
        }
        let json = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| bad(field, "not a live cursor (bad encoding)"))?;
        if json.first() != Some(&b'{') {
            return Err(bad(field, "not a live cursor (not an object)"));
        }
        let c: Cursor = serde_json::from_slice(&json)
            .map_err(|e| bad(field, format!("not a live cursor ({e})")))?;
        if c.v < 0 || c.p < 0 || c.s.values().any(|&o| o < 0) {
            return Err(bad(field, "positions must be non-negative"));
        }
        if c.s.len() > MAX_LIVE_STREAMS || c.e.len() > MAX_LIVE_STREAMS {
            return Err(bad(field, format!("more than {MAX_LIVE_STREAMS} streams")));
        }
        if let Some(k) =
            c.s.keys()
                .chain(c.e.iter())
                .find(|k| Key::parse((*k).clone()).is_err())
        {
            return Err(bad(field, format!("invalid stream key {k:?}")));
        }
        if let Some(st) = c.st.as_deref().filter(|st| RunStatus::parse(st).is_none()) {
            return Err(bad(field, format!("unknown status {st:?}")));
        }
        Ok(c)
    }

    /// The wire form (the SSE `id:`).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Next offset to deliver from stream `key`.
    pub fn next(&self, key: &str) -> i64 {
        self.s.get(key).copied().unwrap_or(0)
    }

    /// Checks the cursor against the run: it may not be ahead of the event clock, name
    /// streams the run lacks, be past a stream's tail, or call an unfinished stream ended.
    pub fn check_against(
        &self,
        field: &str,
        clock: i64,
        streams: &[StreamInfo],
    ) -> Result<(), ApiError> {
        if self.v > clock {
            return Err(bad(field, "ahead of the run's events"));
        }
        let find = |k: &str| streams.iter().find(|s| s.key == k);
        for (k, &o) in &self.s {
            match find(k) {
                None => return Err(bad(field, format!("the run has no stream {k:?}"))),
                Some(s) if o > s.next => {
                    return Err(bad(field, format!("past the end of stream {k:?}")))
                }
                Some(_) => {}
            }
        }
        for k in &self.e {
            match find(k) {
                Some(s) if s.closed && self.next(k) == s.next => {}
                _ => return Err(bad(field, format!("stream {k:?} has not ended"))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str, next: i64, closed: bool) -> StreamInfo {
        StreamInfo {
            key: key.into(),
            next,
            closed,
        }
    }

    #[test]
    fn round_trip_and_compact() {
        assert_eq!(Cursor::default().encode(), URL_SAFE_NO_PAD.encode("{}"));
        let mut c = Cursor {
            v: 7,
            st: Some("PENDING".into()),
            ..Cursor::default()
        };
        c.s.insert("output".into(), 12);
        c.e.insert("output".into());
        let text = c.encode();
        assert!(!text.contains(['\n', '\r', '=', '+', '/']));
        assert_eq!(Cursor::parse("cursor", &text).unwrap(), c);
    }

    #[test]
    fn rejects_malformed() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            "!!!".to_string(),
            "12".to_string(),
            enc("[]"),
            enc(r#"{"v":-1}"#),
            enc(r#"{"x":1}"#),
            enc(r#"{"s":{"a":-3}}"#),
            enc(r#"{"s":{"":1}}"#),
            enc(r#"{"st":"DONE"}"#),
            "a".repeat(MAX_CURSOR_LEN + 1),
        ] {
            let e = Cursor::parse("Last-Event-ID", &bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "invalid_cursor"),
                "{bad}"
            );
        }
    }

    #[test]
    fn checks_against_the_run() {
        let streams = [info("a", 5, false), info("b", 2, true)];
        let parse = |s: &str| Cursor::parse("c", &URL_SAFE_NO_PAD.encode(s)).unwrap();
        assert!(parse(r#"{"v":3,"s":{"a":5,"b":2},"e":["b"]}"#)
            .check_against("c", 3, &streams)
            .is_ok());
        for bad in [
            r#"{"v":4}"#,
            r#"{"s":{"a":6}}"#,
            r#"{"s":{"z":0}}"#,
            r#"{"e":["a"]}"#,
            r#"{"s":{"b":1},"e":["b"]}"#,
        ] {
            assert!(parse(bad).check_against("c", 3, &streams).is_err(), "{bad}");
        }
    }
}
