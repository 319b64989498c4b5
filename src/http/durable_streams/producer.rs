//! Idempotent producers (`Producer-Id`, `Producer-Epoch`, `Producer-Seq`): header parsing
//! and the answers to each verdict. The verdict itself is reached in the append's
//! transaction, beside the producer's stored state (`flowgate.ds_write_batch`, see
//! [`crate::store::durable_streams::batch`]): a new epoch starts at sequence 0 and fences
//! off older ones, a sequence at or below the last accepted is a duplicate, one past it is
//! accepted, any other is a gap.

use axum::http::HeaderMap;

use super::header;
use super::offsets::parse_producer_number;
use axum::http::StatusCode;

use super::fail;
use crate::error::ApiError;
use crate::store::durable_streams::DsOutcome;

/// The producer tuple sent with an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    /// Producer id (non-empty).
    pub id: String,
    /// Epoch: a higher epoch fences off every older writer of the same id.
    pub epoch: i64,
    /// Sequence number within the epoch, from 0.
    pub seq: i64,
}

/// Longest producer id accepted.
pub const MAX_PRODUCER_ID: usize = 256;

impl Producer {
    /// Reads the three headers: all or none, each well-formed, else a 400.
    pub fn from_headers(h: &HeaderMap) -> Result<Option<Producer>, ApiError> {
        let id = header(h, "producer-id");
        let epoch = header(h, "producer-epoch");
        let seq = header(h, "producer-seq");
        let (id, epoch, seq) = match (id, epoch, seq) {
            (None, None, None) => return Ok(None),
            (Some(i), Some(e), Some(s)) => (i, e, s),
            _ => {
                return Err(ApiError::invalid(
                    "Producer-Id",
                    "Producer-Id, Producer-Epoch and Producer-Seq go together",
                ))
            }
        };
        if id.trim().is_empty() || id.len() > MAX_PRODUCER_ID {
            return Err(ApiError::invalid(
                "Producer-Id",
                format!("must be 1 to {MAX_PRODUCER_ID} characters"),
            ));
        }
        let num = |name: &str, v: &str| {
            parse_producer_number(v)
                .ok_or_else(|| ApiError::invalid(name, "must be an integer in 0..=2^53-1"))
        };
        Ok(Some(Producer {
            id: id.to_string(),
            epoch: num("Producer-Epoch", epoch)?,
            seq: num("Producer-Seq", seq)?,
        }))
    }
}

/// The error for an append the producer checks refused: an older epoch (403, fenced off),
/// a new epoch not starting at sequence 0 (400), or a gap in the sequence (409).
pub fn refusal(outcome: &DsOutcome) -> Option<ApiError> {
    Some(match *outcome {
        DsOutcome::StaleEpoch { current } => fail(
            StatusCode::FORBIDDEN,
            "stale_producer_epoch",
            "a newer producer epoch exists",
        )
        .with_header("producer-epoch", current.to_string()),
        DsOutcome::EpochSeqNotZero => ApiError::invalid(
            "Producer-Seq",
            "a new producer epoch must start at sequence 0",
        ),
        DsOutcome::Gap { expected, received } => fail(
            StatusCode::CONFLICT,
            "producer_sequence_gap",
            format!("expected Producer-Seq {expected}, got {received}"),
        )
        .with_header("producer-expected-seq", expected.to_string())
        .with_header("producer-received-seq", received.to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(epoch: i64, seq: i64) -> Producer {
        Producer {
            id: "p".into(),
            epoch,
            seq,
        }
    }

    #[test]
    fn headers_all_or_none() {
        let mut h = HeaderMap::new();
        assert_eq!(Producer::from_headers(&h).ok(), Some(None));
        h.insert("producer-id", "a".parse().unwrap());
        assert!(Producer::from_headers(&h).is_err());
        h.insert("producer-epoch", "1".parse().unwrap());
        h.insert("producer-seq", "2".parse().unwrap());
        assert_eq!(
            Producer::from_headers(&h).ok(),
            Some(Some(p(1, 2)).map(|mut x| {
                x.id = "a".into();
                x
            }))
        );
        h.insert("producer-seq", "-1".parse().unwrap());
        assert!(Producer::from_headers(&h).is_err());
        h.insert("producer-seq", "1".parse().unwrap());
        h.insert("producer-id", "".parse().unwrap());
        assert!(Producer::from_headers(&h).is_err());
    }
}
