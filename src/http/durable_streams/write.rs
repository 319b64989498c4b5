//! Appends (POST): bytes or JSON messages, closing, `Stream-Seq` and idempotent producers,
//! in one transaction holding the stream row's lock, so offsets are gapless, commit in
//! order, and the closed, sequence and producer checks see a consistent row.

use bytes::Bytes;
use sqlx::{Postgres, Transaction};

use super::media_type;
use super::producer::{self, Producer, Verdict};
use super::store::meta_by_path;
use crate::error::StoreError;
use crate::store::Store;

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

/// What a POST did.
#[derive(Debug)]
pub enum Appended {
    /// Applied (or a close-only on a closed stream).
    Done {
        /// Stream id (for the note).
        id: i64,
        /// New tail.
        tail: i64,
        /// Closed now.
        closed: bool,
        /// Rows were added.
        new_data: bool,
    },
    /// A producer retry of something already applied (204).
    Duplicate {
        /// Tail.
        tail: i64,
        /// Closed.
        closed: bool,
        /// Current epoch.
        epoch: i64,
        /// Highest accepted seq.
        seq: i64,
    },
    /// No such stream (404).
    Missing,
    /// Deleted while forks remain (410).
    Gone,
    /// Closed (409 with `Stream-Closed`).
    Closed {
        /// Tail.
        tail: i64,
    },
    /// Content type differs from the stream's (409).
    TypeMismatch,
    /// `Stream-Seq` not above the last one (409).
    SeqConflict,
    /// Producer verdict other than accept.
    Producer(Verdict),
    /// Body rejected (400).
    Invalid(String),
}

/// Splits a body into rows: JSON mode validates and flattens one array level (byte-exact
/// elements); other types are one row. `allow_empty_array` for PUT.
pub fn rows(json: bool, body: &[u8], allow_empty_array: bool) -> Result<Vec<Vec<u8>>, String> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if !json {
        return Ok(vec![body.to_vec()]);
    }
    let raw: &serde_json::value::RawValue =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let text = raw.get().trim();
    if !text.starts_with('[') {
        return Ok(vec![text.as_bytes().to_vec()]);
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
    Ok(items.iter().map(|v| v.get().as_bytes().to_vec()).collect())
}

pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    after: i64,
    rows: &[Vec<u8>],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO flowgate.ds_records (stream_id, seq, payload)
         SELECT $1, $2 + t.ord, t.p FROM unnest($3::bytea[]) WITH ORDINALITY AS t(p, ord)",
    )
    .bind(id)
    .bind(after)
    .bind(rows)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Appends and/or closes (POST).
    pub async fn ds_append(&self, a: &Append) -> Result<Appended, StoreError> {
        let mut tx = self.pool.begin().await?;
        let m = match meta_by_path(&mut *tx, &a.path, true).await? {
            Some(m) if m.deleted => return Ok(Appended::Gone),
            Some(m) if !m.expired => m,
            _ => return Ok(Appended::Missing),
        };
        let has_body = !a.body.is_empty();
        if m.closed {
            if let Some(p) = &a.producer {
                if m.closed_by.as_deref() == Some(p.id.as_str())
                    && m.closed_epoch == Some(p.epoch)
                    && m.closed_seq == Some(p.seq)
                {
                    return Ok(Appended::Duplicate {
                        tail: m.tail,
                        closed: true,
                        epoch: p.epoch,
                        seq: p.seq,
                    });
                }
            }
            if a.close && !has_body {
                return Ok(Appended::Done {
                    id: m.id,
                    tail: m.tail,
                    closed: true,
                    new_data: false,
                });
            }
            return Ok(Appended::Closed { tail: m.tail });
        }
        if has_body {
            let ct = a.content_type.as_deref().unwrap_or_default();
            if media_type(ct) != media_type(&m.content_type) {
                return Ok(Appended::TypeMismatch);
            }
        }
        if let Some(p) = &a.producer {
            let state: Option<(i64, i64)> = sqlx::query_as(
                "SELECT epoch, seq FROM flowgate.ds_producers
                 WHERE stream_id = $1 AND producer = $2 FOR UPDATE",
            )
            .bind(m.id)
            .bind(&p.id)
            .fetch_optional(&mut *tx)
            .await?;
            match producer::check(state, p) {
                Verdict::Accept => {}
                Verdict::Duplicate { epoch, seq } => {
                    return Ok(Appended::Duplicate {
                        tail: m.tail,
                        closed: m.closed,
                        epoch,
                        seq,
                    })
                }
                v => return Ok(Appended::Producer(v)),
            }
        }
        if let (Some(seq), Some(last)) = (&a.seq, &m.last_seq) {
            if seq <= last {
                return Ok(Appended::SeqConflict);
            }
        }
        let new_rows = match rows(m.is_json(), &a.body, a.close) {
            Ok(r) => r,
            Err(e) => return Ok(Appended::Invalid(e)),
        };
        insert_rows(&mut tx, m.id, m.tail, &new_rows).await?;
        let tail = m.tail + new_rows.len() as i64;
        let closer = a.producer.as_ref().filter(|_| a.close);
        sqlx::query(
            "UPDATE flowgate.ds_streams
             SET tail = $2, closed = closed OR $3, last_seq = coalesce($4, last_seq),
                 touched_at = now(), closed_by = $5, closed_epoch = $6, closed_seq = $7
             WHERE id = $1",
        )
        .bind(m.id)
        .bind(tail)
        .bind(a.close)
        .bind(&a.seq)
        .bind(closer.map(|p| p.id.clone()))
        .bind(closer.map(|p| p.epoch))
        .bind(closer.map(|p| p.seq))
        .execute(&mut *tx)
        .await?;
        if let Some(p) = &a.producer {
            sqlx::query(
                "INSERT INTO flowgate.ds_producers (stream_id, producer, epoch, seq)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (stream_id, producer)
                 DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
            )
            .bind(m.id)
            .bind(&p.id)
            .bind(p.epoch)
            .bind(p.seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Appended::Done {
            id: m.id,
            tail,
            closed: a.close,
            new_data: !new_rows.is_empty(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::rows;

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
