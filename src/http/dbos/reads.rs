//! Reads of DBOS runs: status, list, events (JSON, SSE, long-poll), streams (SSE,
//! long-poll) and the page's live view. Each one is flowgate's own handler run against the
//! DBOS hub, so framing, resumption and limits are identical.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{name, source};
use crate::auth::token::Scope;
use crate::dbos::Dbos;
use crate::error::ApiError;
use crate::http::access::{AdminKey, Caller, StreamPermit};
use crate::http::events::{list_on, wait_on, WaitQuery};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::live::{live_on, LiveQuery};
use crate::http::streams::{follow_on, poll_on, ReadQuery};
use crate::http::AppState;

/// Most runs one list returns.
const MAX_LIST: i64 = 1000;

/// `GET /v1/dbos/workflows/{id}`: id, workflow name, status, output, error, timestamps.
pub async fn status(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = name("id", id)?;
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
    Ok(Json(serde_json::json!({ "workflows": rows })).into_response())
}

/// `GET …/events`: `{key: {value, version}}`, or SSE of changes.
pub async fn events(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let id = name("id", id)?;
    reader(&app, &caller, &id)?;
    let dbos = source(&app)?;
    list_on(&app, &dbos.hub, &caller, &id, &headers, &q).await
}

/// `GET …/events/{key}?after=&timeout=`: long-poll on one event.
pub async fn wait(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let (id, key) = (name("id", id)?, name("key", key)?);
    let (dbos, permit) = open(&app, &caller, &id)?;
    wait_on(&app, &dbos.hub, permit, &id, &key, &q).await
}

/// `GET …/streams/{key}`: SSE, `id:` = DBOS offset, `event: end` at the close.
pub async fn follow(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((id, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let (id, key) = (name("id", id)?, name("key", key)?);
    let (dbos, permit) = open(&app, &caller, &id)?;
    follow_on(&app, &dbos.hub, permit, &id, &key, &headers, &q).await
}

/// `GET …/streams/{key}/poll?from=&timeout=`.
pub async fn poll(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let (id, key) = (name("id", id)?, name("key", key)?);
    let (dbos, permit) = open(&app, &caller, &id)?;
    poll_on(&app, &dbos.hub, permit, &id, &key, &q).await
}

/// `GET …/live`: status, events and every stream on one SSE connection.
pub async fn live(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    let id = name("id", id)?;
    let (dbos, permit) = open(&app, &caller, &id)?;
    live_on(&app, &dbos.hub, permit, &id, &headers, &q).await
}

/// The DBOS source and a streaming permit for a reader of run `id`.
fn open<'a>(
    app: &'a AppState,
    caller: &Caller,
    id: &str,
) -> Result<(&'a Dbos, StreamPermit), ApiError> {
    reader(app, caller, id)?;
    let dbos = source(app)?;
    Ok((dbos, caller.stream_permit(&app.auth)?))
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
