//! Event endpoints: all events of a run (JSON, or SSE of changes), the long-poll on one key,
//! and the producer's set.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::extract::{self, ApiJson, ApiPath, ApiQuery};
use super::values::{check_readable, to_json, EventView};
use super::{sse, AppState};
use crate::error::ApiError;
use crate::http::access::{AdminKey, Caller, Read, RunAccess, StreamPermit};
use crate::hub::Hub;
use crate::ids::{Key, RunId};

/// Routes under `/v1/workflows/{id}/events`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/workflows/{id}/events", get(list))
        .route("/v1/workflows/{id}/events/{key}", get(wait).put(set))
}

/// `?after=&timeout=`
#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    after: Option<String>,
    timeout: Option<String>,
}

/// `GET …/events`: `{key: {value, version}}`, or with `Accept: text/event-stream` an SSE of
/// changes (`event: event`, `id: <version>`, data `{key, value, version}`), resumable with
/// `Last-Event-ID` or `?after=`.
async fn list(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let run = extract::name("id", id, RunId::parse)?;
    list_on(&app, &app.hub, &access.caller, run.as_str(), &headers, &q).await
}

/// All events of `run` through `hub`: JSON, or SSE of changes (counted against `caller`).
pub(crate) async fn list_on(
    app: &AppState,
    hub: &Hub,
    caller: &Caller,
    run: &str,
    headers: &HeaderMap,
    q: &WaitQuery,
) -> Result<Response, ApiError> {
    if sse::wants_sse(headers) {
        let permit = caller.stream_permit(&app.auth)?;
        let after = match extract::last_event_id(headers)? {
            Some(v) => v,
            None => extract::offset("after", q.after.as_deref())?.unwrap_or(0),
        };
        let sub = hub.subscribe_run(run);
        hub.source().require_run(run).await?;
        let delivered = app.metrics.events_delivered.clone();
        let frames = sub.follow_events(after).map(move |ev| {
            delivered.inc();
            let data = to_json(&EventView {
                key: Some(&ev.key),
                value: &ev.value,
                version: ev.version,
            });
            sse::event(Some(&ev.version.to_string()), Some("event"), &data)
        });
        return sse::response(app, permit, frames);
    }
    let (events, clock) = hub.source().events_after(run, 0).await?;
    if clock.is_none() {
        return Err(ApiError::run_not_found());
    }
    let map: BTreeMap<&str, EventView> = events
        .iter()
        .map(|e| {
            let view = EventView {
                key: None,
                value: &e.value,
                version: e.version,
            };
            (e.key.as_str(), view)
        })
        .collect();
    Ok(json_response(to_json(&map)))
}

/// `GET …/events/{key}?after=V&timeout=S`: `{value, version}` once version > V; 204 at the
/// timeout.
async fn wait(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let run = extract::name("id", id, RunId::parse)?;
    let key = extract::name("key", key, Key::parse)?;
    let permit = access.caller.stream_permit(&app.auth)?;
    wait_on(&app, &app.hub, permit, run.as_str(), key.as_str(), &q).await
}

/// Long-poll on event `key` of `run` through `hub`; `_permit` counts it against its client.
pub(crate) async fn wait_on(
    app: &AppState,
    hub: &Hub,
    _permit: StreamPermit,
    run: &str,
    key: &str,
    q: &WaitQuery,
) -> Result<Response, ApiError> {
    let after = extract::offset("after", q.after.as_deref())?.unwrap_or(0);
    let wait = extract::timeout(q.timeout.as_deref(), 30.0, app.config.max_wait_period())?;
    let mut sub = hub.subscribe_run(run);
    hub.source().require_run(run).await?;
    let _waiting = super::sse::GaugeGuard::inc(&app.metrics.long_polls_waiting);
    let found = tokio::select! {
        ev = sub.wait_event(key, after) => Some(ev),
        _ = tokio::time::sleep(wait) => None,
        _ = app.shutdown.cancelled() => None,
    };
    Ok(match found {
        Some(ev) => {
            app.metrics.events_delivered.inc();
            json_response(to_json(&EventView {
                key: None,
                value: &ev.value,
                version: ev.version,
            }))
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// A 200 with a JSON body already serialized.
fn json_response(body: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `PUT …/events/{key}`: the body is the new value; returns `{version}`.
async fn set(
    State(app): State<AppState>,
    _admin: AdminKey,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiJson(value): ApiJson<Box<serde_json::value::RawValue>>,
) -> Result<Response, ApiError> {
    let run = extract::name("id", id, RunId::parse)?;
    let key = extract::name("key", key, Key::parse)?;
    check_readable("body", &value)?;
    if value.get().len() > app.config.max_value {
        return Err(ApiError::value_too_large(
            "body",
            "value",
            app.config.max_value,
        ));
    }
    let version = app.notifier.group().set_event(&run, &key, value).await?;
    Ok(Json(json!({ "version": version })).into_response())
}
