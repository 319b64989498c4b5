//! The run list's parameters (filters, page, cursor, a tag token's reach) and the live run
//! list: `GET /v1/workflows` with `Accept: text/event-stream`.
//!
//! Without a position it sends the matching runs once (`event: runs`, newest first, up to
//! `limit`), then `event: run` for every matching run that starts, changes status or
//! finishes. Every `id:` is a feed position; a reconnect with `Last-Event-ID` (or
//! `?since=`) continues after it with nothing lost or repeated. Changes come from the hub's
//! run feed, so an open list costs no database read per change; with `FLOWGATE_READ_URL`
//! the first read and the feed's reads go to a standby.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::extract;
use super::{sse, AppState};
use crate::auth::token::Scope;
use crate::error::ApiError;
use crate::http::access::{forbidden, Caller, StreamPermit, Who};
use crate::hub::FeedItem;
use crate::ids::{RunId, WorkflowName};
use crate::store::run_changes::Snapshot;
use crate::store::runs::ListQuery;
use crate::store::RunStatus;

/// Largest page of `GET /v1/workflows`.
pub const MAX_PAGE: i64 = 500;

/// `?status=&workflow=&tag=&limit=&cursor=` (and `since=` for the live list)
#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    workflow: Option<String>,
    tag: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    /// Live list position to resume after.
    pub since: Option<String>,
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = c.split_once(':')?;
    let ts = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    RunId::parse(id).ok()?;
    Some((ts, id.to_string()))
}

impl ListParams {
    /// Validates the filters and page into a query.
    pub fn query(self) -> Result<ListQuery, ApiError> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(
                RunStatus::parse(s)
                    .filter(|s| RunStatus::OWN.contains(s))
                    .ok_or_else(|| {
                        let names = RunStatus::OWN.map(RunStatus::as_str);
                        ApiError::invalid("status", format!("must be one of {names:?}"))
                    })?,
            ),
        };
        let workflow = self
            .workflow
            .map(|w| extract::name("workflow", w, WorkflowName::parse).map(|w| w.to_string()))
            .transpose()?;
        let tag = self
            .tag
            .map(|t| crate::tags::parse_one(&t).map_err(|e| ApiError::invalid("tag", e)))
            .transpose()?;
        let limit = match self.limit.as_deref() {
            None => 50,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be 1 to {MAX_PAGE}"),
                    ))
                }
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => {
                Some(parse_cursor(c).ok_or_else(|| ApiError::invalid("cursor", "malformed"))?)
            }
        };
        Ok(ListQuery {
            status,
            workflow,
            tag,
            any_tag: None,
            limit,
            after,
        })
    }
}

/// An API key lists every run; a tag token only those carrying its tags (a `?tag=` outside
/// them is refused); anything else is refused as for any admin route.
pub fn narrow_to_token(caller: &Caller, q: &mut ListQuery) -> Result<(), ApiError> {
    match &caller.who {
        Who::Tags(claims) => {
            if !claims.rights.scopes.contains(&Scope::Read) {
                return Err(forbidden("this tag token does not allow reading"));
            }
            if q.tag.as_ref().is_some_and(|t| !claims.tags.contains(t)) {
                return Err(forbidden("this tag token does not cover that tag").with_field("tag"));
            }
            q.any_tag = Some(claims.tags.clone());
            Ok(())
        }
        Who::Expired => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "the token has expired",
        )),
        _ => caller.require_admin(),
    }
}

/// Opens the live list for `filter`, resuming after `Last-Event-ID` or `since` if given.
pub fn live(
    app: &AppState,
    permit: StreamPermit,
    headers: &HeaderMap,
    since: Option<&str>,
    filter: ListQuery,
) -> Result<Response, ApiError> {
    let resume = match headers.get("last-event-id") {
        Some(v) => Some((v.to_str().unwrap_or(""), "Last-Event-ID")),
        None => since.map(|s| (s, "since")),
    };
    let resume = match resume {
        Some((text, field)) => Some(Snapshot::parse(text.trim()).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_position",
                "not a run list position (use the id of an event this list sent)",
            )
            .with_field(field)
        })?),
        None => None,
    };
    let sub = app.hub.subscribe_runs();
    let hub = app.hub.clone();
    let frames = async_stream::stream! {
        let start = match resume {
            Some(pos) => pos,
            None => {
                let (runs, pos) = crate::hub::retry_read("run list", || hub.runs_now(&filter)).await;
                let body = json!({ "runs": runs }).to_string();
                yield sse::event(Some(&pos.to_string()), Some("runs"), body.as_bytes());
                pos
            }
        };
        let changes = sub.follow(start, filter);
        futures::pin_mut!(changes);
        while let Some(item) = changes.next().await {
            yield frame(&item);
        }
    };
    sse::response(app, permit, frames)
}

fn frame(item: &FeedItem) -> Bytes {
    let data = serde_json::to_vec(&item.run).unwrap_or_default();
    let id = item.position.as_ref().map(|p| p.to_string());
    sse::event(id.as_deref(), Some("run"), &data)
}
