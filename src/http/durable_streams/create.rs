//! Creation (PUT): a new stream, an idempotent re-creation, or a fork of another stream,
//! in one transaction holding the path's row lock (and the fork source's); and reading
//! a PUT's lifetime and fork headers.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use axum::http::HeaderMap;

use sqlx::PgConnection;

use super::offsets::{self, Start};
use super::write::rows;
use super::{header, media_type, DEFAULT_CONTENT_TYPE};
use crate::error::{ApiError, StoreError};
use crate::store::durable_streams::records::{insert_rows, read_rows};
use crate::store::durable_streams::streams::{self, meta_by_path};
use crate::store::durable_streams::{Meta, NewStream};
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

impl Create {
    /// `Stream-TTL` or `Stream-Expires-At` (not both).
    pub fn lifetime(h: &HeaderMap) -> Result<(Option<i64>, Option<DateTime<Utc>>), ApiError> {
        let ttl = header(h, "stream-ttl")
            .map(|v| {
                offsets::parse_ttl(v).ok_or_else(|| {
                    ApiError::invalid("Stream-TTL", "must be a whole number of seconds")
                })
            })
            .transpose()?;
        let expires_at = header(h, "stream-expires-at")
            .map(|v| {
                offsets::parse_expires_at(v)
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| {
                        ApiError::invalid("Stream-Expires-At", "must be an RFC 3339 timestamp")
                    })
            })
            .transpose()?;
        if ttl.is_some() && expires_at.is_some() {
            return Err(ApiError::invalid(
                "Stream-TTL",
                "Stream-TTL and Stream-Expires-At are mutually exclusive",
            ));
        }
        Ok((ttl, expires_at))
    }

    /// The fork a PUT to `path` asks for (`Stream-Forked-From`, whose value `source`
    /// turns into a path, and its offsets), if any.
    pub fn fork(
        h: &HeaderMap,
        path: &str,
        source: fn(&str) -> String,
    ) -> Result<Option<Fork>, ApiError> {
        let from = header(h, "stream-forked-from").map(source);
        let at = header(h, "stream-fork-offset")
            .map(|v| match offsets::parse(v.trim()) {
                Some(Start::At(n)) => Ok(Some(n)),
                Some(Start::Now) => Ok(None),
                None => Err(ApiError::invalid("Stream-Fork-Offset", "malformed offset")),
            })
            .transpose()?
            .flatten();
        let sub = header(h, "stream-fork-sub-offset")
            .map(|v| {
                let v = v.trim();
                (!v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| v.parse::<i64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "Stream-Fork-Sub-Offset",
                            "must be a non-negative integer",
                        )
                    })
            })
            .transpose()?;
        if sub.is_some() && from.is_none() {
            return Err(ApiError::invalid(
                "Stream-Fork-Sub-Offset",
                "needs Stream-Forked-From",
            ));
        }
        if sub.unwrap_or(0) > 0 && header(h, "stream-fork-offset").is_none() {
            return Err(ApiError::invalid(
                "Stream-Fork-Sub-Offset",
                "needs Stream-Fork-Offset",
            ));
        }
        if from.as_deref().is_some_and(|f| f.is_empty() || f == path) {
            return Err(ApiError::invalid("Stream-Forked-From", "not a stream path"));
        }
        Ok(from.map(|from| Fork {
            from,
            at,
            sub: sub.unwrap_or(0),
        }))
    }
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

/// Creates a stream (PUT). Retries once if a concurrent PUT took the path first.
pub async fn create(store: &Store, c: &Create) -> Result<Created, StoreError> {
    let mut attempt = 0;
    loop {
        match create_once(store, c).await {
            Err(StoreError::Db(e))
                if attempt < 2
                    && e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn create_once(store: &Store, c: &Create) -> Result<Created, StoreError> {
    let mut tx = store.pool.begin().await?;
    if let Some(done) = take_path(&mut tx, c).await? {
        return Ok(done);
    }
    let mut plan = Plan {
        content_type: c
            .content_type
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string()),
        ttl: c.ttl,
        expires_at: c.expires_at,
        source: None,
        fork_offset: 0,
        fork_at: None,
        prefix: None,
    };
    if let Some(f) = &c.fork {
        if let Err(refused) = plan_fork(&mut tx, c, f, &mut plan).await? {
            return Ok(refused);
        }
    }
    let json = media_type(&plan.content_type) == "application/json";
    let mut body = match rows(json, &c.body, true) {
        Ok(r) => r,
        Err(e) => return Ok(Created::Invalid(e)),
    };
    if let Some(p) = plan.prefix.take() {
        body.insert(0, p);
    }
    let tail = plan.fork_offset + body.len() as i64;
    let id = streams::insert_stream(&mut tx, &new_stream(c, &plan, tail)).await?;
    insert_rows(&mut tx, id, plan.fork_offset, &body).await?;
    let meta = meta_by_path(&mut tx, &c.path, false).await?;
    tx.commit().await?;
    Ok(match meta {
        Some(m) => Created::New(m),
        None => Created::Conflict("the stream vanished during creation".into()),
    })
}

/// How a new stream starts: its content type and lifetime, and for a fork the source, the
/// offset it branches at, and the kept part of an append the fork cuts.
struct Plan {
    content_type: String,
    ttl: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    source: Option<i64>,
    fork_offset: i64,
    fork_at: Option<i64>,
    prefix: Option<Bytes>,
}

/// Locks the path: an answer if a live (or deleted but still forked) stream holds it; an
/// expired one is dropped to make room.
async fn take_path(conn: &mut PgConnection, c: &Create) -> Result<Option<Created>, StoreError> {
    let Some(m) = meta_by_path(conn, &c.path, true).await? else {
        return Ok(None);
    };
    if m.deleted {
        return Ok(Some(Created::Conflict(
            "the stream at this path was deleted and is still read by forks".into(),
        )));
    }
    if !m.expired {
        return Ok(Some(if same_config(&m, c) {
            Created::Existing(m)
        } else {
            Created::Conflict("a stream with a different configuration exists".into())
        }));
    }
    streams::drop_stream(conn, m.id, false).await?;
    Ok(None)
}

/// Locks and checks the fork source, and fills in where the fork starts and what it
/// inherits; `Err` is the refusal to answer with.
async fn plan_fork(
    conn: &mut PgConnection,
    c: &Create,
    f: &Fork,
    plan: &mut Plan,
) -> Result<Result<(), Created>, StoreError> {
    let src = match meta_by_path(conn, &f.from, true).await? {
        Some(s) if s.deleted => {
            return Ok(Err(Created::Conflict("the fork source was deleted".into())))
        }
        Some(s) if !s.expired => s,
        _ => return Ok(Err(Created::SourceMissing)),
    };
    match &c.content_type {
        Some(ct) if media_type(ct) != media_type(&src.content_type) => {
            return Ok(Err(Created::Conflict(
                "content type differs from the fork source".into(),
            )));
        }
        Some(_) => {}
        None => plan.content_type = src.content_type.clone(),
    }
    let at = f.at.unwrap_or(src.tail);
    if at > src.tail {
        return Ok(Err(Created::Invalid(
            "Stream-Fork-Offset is beyond the source's tail".into(),
        )));
    }
    plan.fork_offset = at;
    if f.sub > 0 {
        if let Err(refused) = cut(conn, &src, at, f.sub, plan).await? {
            return Ok(Err(refused));
        }
    }
    if plan.ttl.is_none() && plan.expires_at.is_none() {
        plan.ttl = src.ttl_seconds;
        plan.expires_at = src.expires_at;
    }
    streams::add_fork(conn, src.id).await?;
    plan.source = Some(src.id);
    plan.fork_at = Some(at);
    Ok(Ok(()))
}

/// A fork `sub` messages (JSON) or bytes past `at`: a byte fork inside an append keeps
/// that append's first `sub` bytes as its own first append.
async fn cut(
    conn: &mut PgConnection,
    src: &Meta,
    at: i64,
    sub: i64,
    plan: &mut Plan,
) -> Result<Result<(), Created>, StoreError> {
    if media_type(&src.content_type) == "application/json" {
        if at + sub > src.tail {
            return Ok(Err(Created::Invalid(
                "Stream-Fork-Sub-Offset is beyond the source's messages".into(),
            )));
        }
        plan.fork_offset = at + sub;
        return Ok(Ok(()));
    }
    let row = read_rows(conn, src.id, at, at + 1, 1).await?;
    let Some((_, payload)) = row.into_iter().next() else {
        return Ok(Err(Created::Invalid(
            "Stream-Fork-Sub-Offset is past the source's data".into(),
        )));
    };
    let sub = usize::try_from(sub).unwrap_or(usize::MAX);
    if sub > payload.len() {
        return Ok(Err(Created::Invalid(
            "Stream-Fork-Sub-Offset is longer than the append it cuts".into(),
        )));
    }
    if sub == payload.len() {
        plan.fork_offset = at + 1;
    } else {
        plan.prefix = Some(payload.slice(..sub));
    }
    Ok(Ok(()))
}

/// The stream's row.
fn new_stream<'a>(c: &'a Create, plan: &'a Plan, tail: i64) -> NewStream<'a> {
    NewStream {
        path: &c.path,
        content_type: &plan.content_type,
        tail,
        closed: c.closed,
        ttl_seconds: plan.ttl,
        expires_at: plan.expires_at,
        source_id: plan.source,
        fork_offset: plan.source.map(|_| plan.fork_offset),
        fork_from: c.fork.as_ref().map(|f| f.from.as_str()),
        fork_at: plan.fork_at,
        fork_sub: c.fork.as_ref().map(|f| f.sub),
    }
}
