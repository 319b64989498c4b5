//! Appends (POST): bytes or JSON messages, closing, `Stream-Seq` and idempotent producers.
//!
//! A request is split into rows here ([`Append::prepare`]); the checks and the write run in
//! the process's group commit ([`crate::store::durable_streams::batch`]): concurrent
//! appends share one transaction and one commit, each holding its stream row's lock in
//! turn, so offsets are gapless, commit in order, and the closed, sequence and producer
//! checks see a consistent row.

use bytes::Bytes;

use super::media_type;
use super::producer::Producer;
use crate::error::StoreError;
use crate::notify::GroupCommit;
use crate::store::durable_streams::{DsAppend, DsOutcome};

/// A POST.
#[derive(Debug, Clone)]
pub struct Append {
    /// Stream path.
    pub path: String,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// Body (may be empty for a close).
    pub body: Bytes,
    /// `Stream-Closed: true`.
    pub close: bool,
    /// `Stream-Seq`.
    pub seq: Option<Vec<u8>>,
    /// Producer headers.
    pub producer: Option<Producer>,
}

/// What a POST did: the group commit's outcome for it, whether it added rows, and why
/// its body could not be split (behind [`DsOutcome::Invalid`]).
#[derive(Debug)]
pub struct Appended {
    /// The outcome.
    pub outcome: DsOutcome,
    /// Rows were added.
    pub new_data: bool,
    /// The body's problem, if it had one.
    pub invalid: Option<String>,
}

/// Splits a body into rows: JSON mode validates and flattens one array level (byte-exact
/// elements); other types are one row. `allow_empty_array` for PUT.
/// Rows share the body's buffer.
pub fn rows(json: bool, body: &Bytes, allow_empty_array: bool) -> Result<Vec<Bytes>, String> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if !json {
        return Ok(vec![body.clone()]);
    }
    let raw: &serde_json::value::RawValue =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let text = raw.get().trim();
    if !text.starts_with('[') {
        return Ok(vec![body.slice_ref(text.as_bytes())]);
    }
    let items: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if items.is_empty() && !allow_empty_array {
        return Err("an empty JSON array appends nothing".into());
    }
    if items.len() > super::MAX_MESSAGES {
        return Err(format!(
            "at most {} JSON messages per request",
            super::MAX_MESSAGES
        ));
    }
    Ok(items
        .iter()
        .map(|v| body.slice_ref(v.get().as_bytes()))
        .collect())
}

impl Append {
    /// Runs the append in the process's group commit: the body is split by the request's
    /// content type (a body is only ever appended to a stream of the same media type, so
    /// the stream's mode is the request's); the checks run beside the stream's row.
    pub async fn run(self, group: &GroupCommit) -> Result<Appended, StoreError> {
        let media = self.content_type.as_deref().map(media_type);
        let json = media.as_deref() == Some("application/json");
        let (rows, invalid) = match rows(json, &self.body, self.close) {
            Ok(r) => (r, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let new_data = !rows.is_empty();
        let write = DsAppend {
            path: self.path,
            media,
            has_body: !self.body.is_empty(),
            close: self.close,
            seq: self.seq,
            producer: self.producer.map(|p| (p.id, p.epoch, p.seq)),
            invalid: invalid.is_some(),
            rows,
        };
        Ok(Appended {
            outcome: group.ds_append(write).await?,
            new_data,
            invalid,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    fn rows(json: bool, body: &'static [u8], empty: bool) -> Result<Vec<Vec<u8>>, String> {
        super::rows(json, &Bytes::from_static(body), empty)
            .map(|r| r.into_iter().map(|b| b.to_vec()).collect())
    }

    #[test]
    fn json_rows_are_byte_exact_and_flattened_once() {
        assert_eq!(
            rows(true, br#"[{"b":1,"a":2}, [1,2], "x"]"#, false).unwrap(),
            vec![
                br#"{"b":1,"a":2}"#.to_vec(),
                b"[1,2]".to_vec(),
                br#""x""#.to_vec()
            ]
        );
        assert_eq!(rows(true, b" 42 ", false).unwrap(), vec![b"42".to_vec()]);
        assert!(rows(true, b"[]", false).is_err());
        assert!(rows(true, b"[]", true).unwrap().is_empty());
        assert!(rows(true, b"{nope", false).is_err());
        assert_eq!(
            rows(false, b"\0\xff", false).unwrap(),
            vec![b"\0\xff".to_vec()]
        );
        assert!(rows(false, b"", false).unwrap().is_empty());
    }
}
