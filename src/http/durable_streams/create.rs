//! Creation (PUT): a new stream, an idempotent re-creation, or a fork of another stream,
//! in one transaction holding the path's row lock (and the fork source's).

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::store::{meta_by_path, read_rows, Meta};
use super::write::{insert_rows, rows};
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
        let mut prefix: Option<Bytes> = None;
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
                        prefix = Some(payload.slice(..sub));
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
}
