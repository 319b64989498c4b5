//! Creation (PUT, forks included) and appends (POST, closing, `Stream-Seq`, producers),
//! each one transaction holding the stream row's lock, so offsets are gapless, commit in
//! order, and the closed, sequence and producer checks see a consistent row.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::producer::{self, Producer, Verdict};
use super::store::{meta_by_path, read_rows, Meta};
use super::{media_type, DEFAULT_CONTENT_TYPE};
use crate::error::StoreError;
use crate::store::Store;

/// A fork request (`Stream-Forked-From` and friends).
#[derive(Debug, Clone)]
pub struct Fork {
    /// Source path.
    pub from: String,
    /// Offset in the source (default: its tail).
    pub at: Option<i64>,
    /// Bytes (or JSON messages) past `at`.
    pub sub: i64,
}

/// A PUT.
#[derive(Debug, Clone)]
pub struct Create {
    /// Stream path.
    pub path: String,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `Stream-TTL`.
    pub ttl: Option<i64>,
    /// `Stream-Expires-At`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Create closed.
    pub closed: bool,
    /// Initial content.
    pub body: Bytes,
    /// Fork.
    pub fork: Option<Fork>,
}

/// What a PUT did.
#[derive(Debug)]
pub enum Created {
    /// A new stream (201).
    New(Meta),
    /// The same stream already existed (200).
    Existing(Meta),
    /// A different stream exists, or the path or source is deleted (409).
    Conflict(String),
    /// Bad offsets or content (400).
    Invalid(String),
    /// The fork source does not exist (404).
    SourceMissing,
}

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

async fn insert_rows(
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

/// True if an existing stream matches the request's configuration.
fn same_config(m: &Meta, c: &Create) -> bool {
    let ct_ok = match (&c.content_type, &c.fork) {
        (Some(ct), _) => media_type(ct) == media_type(&m.content_type),
        (None, Some(_)) => true,
        (None, None) => media_type(&m.content_type) == DEFAULT_CONTENT_TYPE,
    };
    let inherits = c.fork.is_some() && c.ttl.is_none() && c.expires_at.is_none();
    let ttl_ok = inherits || (c.ttl == m.ttl_seconds && c.expires_at == m.expires_at);
    let fork_ok = match (&c.fork, &m.fork_from) {
        (None, None) => true,
        (Some(f), Some(from)) => {
            f.from == *from
                && f.at.is_none_or(|a| Some(a) == m.fork_at)
                && f.sub == m.fork_sub.unwrap_or(0)
        }
        _ => false,
    };
    ct_ok && ttl_ok && fork_ok && c.closed == m.closed
}

impl Store {
    /// Creates a stream (PUT). Retries once if a concurrent PUT took the path first.
    pub async fn ds_create(&self, c: &Create) -> Result<Created, StoreError> {
        let mut attempt = 0;
        loop {
            match self.ds_create_once(c).await {
                Err(StoreError::Db(e))
                    if attempt < 2
                        && e.as_database_error().and_then(|d| d.code()).as_deref()
                            == Some("23505") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn ds_create_once(&self, c: &Create) -> Result<Created, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(m) = meta_by_path(&mut *tx, &c.path, true).await? {
            if m.deleted {
                return Ok(Created::Conflict(
                    "the stream at this path was deleted and is still read by forks".into(),
                ));
            }
            if !m.expired {
                return Ok(if same_config(&m, c) {
                    Created::Existing(m)
                } else {
                    Created::Conflict("a stream with a different configuration exists".into())
                });
            }
            sqlx::query("SELECT flowgate.ds_drop($1, false)")
                .bind(m.id)
                .execute(&mut *tx)
                .await?;
        }
        let mut content_type = c
            .content_type
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        let (mut ttl, mut expires_at) = (c.ttl, c.expires_at);
        let mut source = None;
        let mut fork_offset = 0;
        let mut prefix: Option<Vec<u8>> = None;
        let mut fork_at = None;
        if let Some(f) = &c.fork {
            let src = match meta_by_path(&mut *tx, &f.from, true).await? {
                Some(s) if s.deleted => {
                    return Ok(Created::Conflict("the fork source was deleted".into()))
                }
                Some(s) if !s.expired => s,
                _ => return Ok(Created::SourceMissing),
            };
            if let Some(ct) = &c.content_type {
                if media_type(ct) != media_type(&src.content_type) {
                    return Ok(Created::Conflict(
                        "content type differs from the fork source".into(),
                    ));
                }
            } else {
                content_type = src.content_type.clone();
            }
            let at = f.at.unwrap_or(src.tail);
            if at > src.tail {
                return Ok(Created::Invalid(
                    "Stream-Fork-Offset is beyond the source's tail".into(),
                ));
            }
            fork_offset = at;
            if f.sub > 0 {
                if src.is_json() {
                    if at + f.sub > src.tail {
                        return Ok(Created::Invalid(
                            "Stream-Fork-Sub-Offset is beyond the source's messages".into(),
                        ));
                    }
                    fork_offset = at + f.sub;
                } else {
                    let row = read_rows(&mut *tx, src.id, at, at + 1, 1).await?;
                    let Some((_, payload)) = row.into_iter().next() else {
                        return Ok(Created::Invalid(
                            "Stream-Fork-Sub-Offset is past the source's data".into(),
                        ));
                    };
                    let sub = usize::try_from(f.sub).unwrap_or(usize::MAX);
                    if sub > payload.len() {
                        return Ok(Created::Invalid(
                            "Stream-Fork-Sub-Offset is longer than the append it cuts".into(),
                        ));
                    }
                    if sub == payload.len() {
                        fork_offset = at + 1;
                    } else {
                        prefix = Some(payload[..sub].to_vec());
                    }
                }
            }
            if ttl.is_none() && expires_at.is_none() {
                ttl = src.ttl_seconds;
                expires_at = src.expires_at;
            }
            sqlx::query("UPDATE flowgate.ds_streams SET forks = forks + 1 WHERE id = $1")
                .bind(src.id)
                .execute(&mut *tx)
                .await?;
            source = Some(src.id);
            fork_at = Some(at);
        }
        let json = media_type(&content_type) == "application/json";
        let mut body = match rows(json, &c.body, true) {
            Ok(r) => r,
            Err(e) => return Ok(Created::Invalid(e)),
        };
        if let Some(p) = prefix {
            body.insert(0, p);
        }
        let tail = fork_offset + body.len() as i64;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO flowgate.ds_streams
               (path, content_type, tail, closed, ttl_seconds, expires_at, source_id,
                fork_offset, fork_from, fork_at, fork_sub)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&c.path)
        .bind(&content_type)
        .bind(tail)
        .bind(c.closed)
        .bind(ttl)
        .bind(expires_at)
        .bind(source)
        .bind(source.map(|_| fork_offset))
        .bind(c.fork.as_ref().map(|f| f.from.clone()))
        .bind(fork_at)
        .bind(c.fork.as_ref().map(|f| f.sub))
        .fetch_one(&mut *tx)
        .await?;
        insert_rows(&mut tx, id, fork_offset, &body).await?;
        let meta = meta_by_path(&mut *tx, &c.path, false).await?;
        tx.commit().await?;
        Ok(match meta {
            Some(m) => Created::New(m),
            None => Created::Conflict("the stream vanished during creation".into()),
        })
    }

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
