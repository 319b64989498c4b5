//! Offsets, cursors and the header values with a fixed grammar (`Stream-TTL`,
//! `Stream-Expires-At`, producer numbers).
//!
//! A protocol offset names the position *after* a row: `0000000000000000_{n:016}` is the
//! position after the n-th row (n = 0 is the start). The first field is reserved for a later
//! segment or compaction epoch and is always zero today, so the strings sort
//! lexicographically in the same order as the integers. `-1` is the start and `now` the tail.

use axum::http::HeaderMap;

use crate::error::ApiError;
use chrono::{DateTime, FixedOffset};

/// Width of each numeric field.
const FIELD: usize = 16;

/// Largest position expressible in the second field.
pub const MAX_POSITION: i64 = 9_999_999_999_999_999;

/// Largest producer epoch or sequence number (2^53 − 1, safe in every JSON client).
pub const MAX_PRODUCER_NUMBER: u64 = (1 << 53) - 1;

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After `n` rows (`-1` is `At(0)`).
    At(i64),
    /// The current tail (`now`).
    Now,
}

/// Formats the position after `n` rows.
pub fn format(n: i64) -> String {
    format!("{:0w$}_{:0w$}", 0, n.max(0), w = FIELD)
}

/// Parses a client offset: `-1`, `now` or `^\d{16}_\d{16}$`. `None` if malformed. A
/// well-formed offset with a non-zero first field maps past every tail, so it is rejected as
/// out of range by the caller.
pub fn parse(s: &str) -> Option<Start> {
    match s {
        "-1" => return Some(Start::At(0)),
        "now" => return Some(Start::Now),
        _ => {}
    }
    let (epoch, pos) = s.split_once('_')?;
    let digits = |f: &str| f.len() == FIELD && f.bytes().all(|b| b.is_ascii_digit());
    if !digits(epoch) || !digits(pos) {
        return None;
    }
    let epoch: i64 = epoch.parse().ok()?;
    let pos: i64 = pos.parse().ok()?;
    Some(Start::At(if epoch == 0 { pos } else { i64::MAX }))
}

/// Seconds in one cursor interval.
const CURSOR_INTERVAL: i64 = 20;

/// The cursor epoch, 2024-10-09T00:00:00Z, in Unix seconds.
const CURSOR_EPOCH: i64 = 1_728_432_000;

/// The `Stream-Cursor` for a live response at Unix time `now`: the current 20-second
/// interval number, or, if the client already holds that interval or a later one, its
/// cursor plus 1–180 intervals of jitter, so that a CDN never serves the same cached
/// long-poll answer in a loop.
pub fn cursor(now_unix: i64, client: Option<&str>, jitter: u32) -> String {
    let current = (now_unix - CURSOR_EPOCH).max(0) / CURSOR_INTERVAL;
    match client.and_then(|c| c.parse::<i64>().ok()) {
        Some(c) if c >= current => (c + 1 + i64::from(jitter % 180)).to_string(),
        _ => current.to_string(),
    }
}

/// Parses `Stream-TTL`: `^(0|[1-9][0-9]*)$` seconds (at most ten years).
pub fn parse_ttl(s: &str) -> Option<i64> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        && s.len() <= 10;
    let n: i64 = if ok { s.parse().ok()? } else { return None };
    (n <= 10 * 365 * 24 * 3600).then_some(n)
}

/// Parses `Stream-Expires-At` (RFC 3339, any offset).
pub fn parse_expires_at(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s.trim()).ok()
}

/// Parses a producer epoch or sequence: a plain decimal in `0..=2^53-1`.
pub fn parse_producer_number(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (n <= MAX_PRODUCER_NUMBER).then_some(n as i64)
}

/// Rejects over-long protocol headers.
pub(crate) fn check_header_sizes(h: &HeaderMap) -> Result<(), ApiError> {
    for name in ["content-type", "stream-seq", "stream-forked-from"] {
        if h.get(name).is_some_and(|v| v.len() > super::MAX_HEADER) {
            return Err(ApiError::invalid(
                name,
                format!("at most {} bytes", super::MAX_HEADER),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_sort() {
        assert_eq!(format(0), "0000000000000000_0000000000000000");
        assert_eq!(format(42), "0000000000000000_0000000000000042");
        for n in [0, 1, 9, 10, 99, 100, 123_456_789, MAX_POSITION] {
            assert_eq!(parse(&format(n)), Some(Start::At(n)));
        }
        let mut v: Vec<String> = [100, 9, 10, 0, 1_000_000, 11].map(format).to_vec();
        v.sort();
        let back: Vec<i64> = v
            .iter()
            .map(|s| match parse(s) {
                Some(Start::At(n)) => n,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, vec![0, 9, 10, 11, 100, 1_000_000]);
    }

    #[test]
    fn offset_grammar() {
        assert_eq!(parse("-1"), Some(Start::At(0)));
        assert_eq!(parse("now"), Some(Start::Now));
        assert_eq!(
            parse("9999999999999999_9999999999999999"),
            Some(Start::At(i64::MAX))
        );
        for bad in [
            "",
            "0",
            "-2",
            "abc",
            "0_0",
            "000000000000000_0000000000000000",
            "0000000000000000_000000000000000a",
            "0000000000000000-0000000000000000",
            "0000000000000000_0000000000000000 ",
            "+000000000000000_0000000000000000",
            "0000000000000000_0000000000000000_0",
            "NOW",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cursor_moves_forward() {
        let now = CURSOR_EPOCH + 20 * 1000 + 5;
        assert_eq!(cursor(now, None, 0), "1000");
        assert_eq!(cursor(now, Some("999"), 7), "1000");
        assert_eq!(cursor(now, Some("junk"), 7), "1000");
        assert_eq!(cursor(now, Some("1000"), 0), "1001");
        assert_eq!(cursor(now, Some("1000"), 179), "1180");
        assert_eq!(cursor(now, Some("2000"), 180), "2001");
    }

    #[test]
    fn header_grammars() {
        assert_eq!(parse_ttl("0"), Some(0));
        assert_eq!(parse_ttl("3600"), Some(3600));
        for bad in ["", "01", "+1", "-1", "1.5", "1e3", " 1", "99999999999"] {
            assert_eq!(parse_ttl(bad), None, "{bad:?}");
        }
        assert!(parse_expires_at("2030-01-01T00:00:00Z").is_some());
        assert!(parse_expires_at("2030-01-01T00:00:00+02:00").is_some());
        assert!(parse_expires_at("tomorrow").is_none());
        assert_eq!(parse_producer_number("0"), Some(0));
        assert_eq!(
            parse_producer_number("9007199254740991"),
            Some((1 << 53) - 1)
        );
        for bad in ["", "-1", "1.0", "abc", "9007199254740992", " 1"] {
            assert_eq!(parse_producer_number(bad), None, "{bad:?}");
        }
    }
}
