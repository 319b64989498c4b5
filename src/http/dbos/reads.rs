//! Reads of DBOS runs: status, list, events (JSON, SSE, long-poll), streams (SSE,
//! long-poll) and the page's live view. Each one is flowgate's own handler run against the
//! DBOS hub, so framing, resumption and limits are identical.

use crate::http::bodies::DbosRuns;
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use crate::store::RunRow;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{name, source, DbosId, DbosIdKey};
use crate::auth::token::Scope;
use crate::error::ApiError;
use crate::http::access::{AdminKey, Caller};
use crate::http::events::{list_on, wait_on, WaitQuery};
use crate::http::extract::{ApiQuery, Names};
use crate::http::live::{live_on, LiveQuery};
use crate::http::reader::RunReader;
use crate::http::streams::{follow_on, poll_on, ReadQuery};
use crate::http::AppState;

/// Most runs one list returns.
const MAX_LIST: i64 = 1000;

/// `GET /v1/dbos/workflows/{id}`: id, workflow name, status, output, error, timestamps.
#[utoipa::path(get, path = "/v1/dbos/workflows/{id}", summary = "DBOS: a workflow's status, output or error",
    params(DbosId), responses((status = 200, description = "The run", body = RunRow), E400_404Auth))]
pub async fn status(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosId(id)): Names<DbosId>,
) -> Result<Response, ApiError> {
    reader(&app, &caller, &id)?;
    let dbos = source(&app)?;
    let row = dbos
        .store
        .get_run(&id)
        .await?
        .ok_or_else(ApiError::run_not_found)?;
    Ok(Json(row).into_response())
}

/// `?status=&workflow=&limit=`
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/dbos/workflows`: newest first.
#[utoipa::path(get, path = "/v1/dbos/workflows", summary = "DBOS: list workflows, newest first",
    params(("status" = Option<String>, Query, description = "Filter by DBOS status"),
        ("workflow" = Option<String>, Query, description = "Filter by workflow name"),
        ("limit" = Option<DbosLimit>, Query, description = "At most this many (1-1000)")),
    responses((status = 200, description = "Workflows", body = DbosRuns), E400_404_413_415Auth))]
pub async fn list(
    State(app): State<AppState>,
    _admin: AdminKey,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let dbos = source(&app)?;
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(l) => match l.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_LIST).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be 1 to {MAX_LIST}"),
                ))
            }
        },
    };
    let status = q.status.map(|s| name("status", s)).transpose()?;
    let workflow = q.workflow.map(|w| name("workflow", w)).transpose()?;
    let rows = dbos
        .store
        .list_runs(status.as_deref(), workflow.as_deref(), limit)
        .await?;
    Ok(Json(DbosRuns { workflows: rows }).into_response())
}

/// `GET …/events`: `{key: {value, version}}`, or SSE of changes.
#[utoipa::path(get, path = "/v1/dbos/workflows/{id}/events",
    summary = "DBOS: all events, or with Accept: text/event-stream an SSE of changes",
    params(DbosId, ("after" = Option<Offset>, Query, description = "Version to resume after (SSE)"), ("timeout" = Option<Seconds>, Query, description = "Seconds to wait (capped by FLOWGATE_MAX_WAIT)"), ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "Events by key, or an SSE of `event` frames",
        content((std::collections::BTreeMap<String, Event> = "application/json"), (String = "text/event-stream"))),
        E400_404Auth))]
pub async fn events(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosId(id)): Names<DbosId>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    reader(&app, &caller, &id)?;
    let dbos = source(&app)?;
    list_on(&app, &dbos.hub, &caller, &id, &headers, &q).await
}

/// `GET …/events/{key}?after=&timeout=`: long-poll on one event.
#[utoipa::path(get, path = "/v1/dbos/workflows/{id}/events/{key}", summary = "DBOS: an event once its version passes ?after",
    params(DbosIdKey, ("after" = Option<Offset>, Query, description = "Version already seen"), ("timeout" = Option<Seconds>, Query, description = "Seconds to wait (capped by FLOWGATE_MAX_WAIT)")),
    responses((status = 200, description = "The event", body = Event), (status = 204, description = "Timed out"),
        E400_404Auth))]
pub async fn wait(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosIdKey(id, key)): Names<DbosIdKey>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    wait_on(open(&app, &caller, &id)?, &key, &q).await
}

/// `GET …/streams/{key}`: SSE, `id:` = DBOS offset, `event: end` at the close.
#[utoipa::path(get, path = "/v1/dbos/workflows/{id}/streams/{key}",
    summary = "DBOS: follow a stream (SSE: records, then `end`)",
    params(DbosIdKey, ("from" = Option<Offset>, Query, description = "First offset to read"), ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "Records as `id: offset`, `data: value`", content_type = "text/event-stream", body = String),
        E400_404_410Auth))]
pub async fn follow(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosIdKey(id, key)): Names<DbosIdKey>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    follow_on(open(&app, &caller, &id)?, &key, &headers, &q).await
}

/// `GET …/streams/{key}/poll?from=&timeout=`.
#[utoipa::path(get, path = "/v1/dbos/workflows/{id}/streams/{key}/poll",
    summary = "DBOS: records from ?from, waiting up to ?timeout for the first",
    params(DbosIdKey, ("from" = Option<Offset>, Query, description = "First offset to read"), ("timeout" = Option<Seconds>, Query, description = "Seconds to wait (capped by FLOWGATE_MAX_WAIT)")),
    responses((status = 200, description = "Records", body = Records), E400_404_410Auth))]
pub async fn poll(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosIdKey(id, key)): Names<DbosIdKey>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    poll_on(open(&app, &caller, &id)?, &key, &q).await
}

/// `GET …/live`: status, events and every stream on one SSE connection.
#[utoipa::path(get, path = "/v1/dbos/workflows/{id}/live",
    summary = "DBOS: status, events and every stream of a workflow on one SSE connection",
    params(DbosId, ("cursor" = Option<String>, Query, description = "Resume position (the last SSE id)"), ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "`status`, `event`, `record`, `close`, `step` and `limit` frames",
        content_type = "text/event-stream", body = String), E400_404Auth))]
pub async fn live(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosId(id)): Names<DbosId>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    live_on(open(&app, &caller, &id)?, &headers, &q).await
}

/// A read of DBOS run `id` through the DBOS source's hub, for a caller allowed to.
fn open<'a>(app: &'a AppState, caller: &Caller, id: &'a str) -> Result<RunReader<'a>, ApiError> {
    reader(app, caller, id)?;
    RunReader::new(app, &source(app)?.hub, caller, id)
}

/// Ok for an API key, or a DBOS run token for `id` with the `read` scope.
fn reader(app: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.require_run_of_kind(&app.auth, super::RUN_TOKEN_KIND, id, Scope::Read)
}

/// 404 for a DBOS run that does not exist.
pub(crate) async fn require(app: &AppState, id: &str) -> Result<(), ApiError> {
    let dbos = source(app)?;
    if dbos.store.run_exists(id).await? {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "run_not_found",
            "no DBOS workflow with this id",
        )
        .with_field("id"))
    }
}
