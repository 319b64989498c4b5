//! Event endpoints: all events of a run (JSON, or SSE of changes), the long-poll on one key,
//! and the producer's set.

use crate::http::bodies::Version;
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;

use super::extract::{self, AdminWrite, ApiQuery, Names};
use super::reader::RunReader;
use super::values::{check_readable, to_json, EventView};
use super::{sse, AppState};
use crate::error::ApiError;
use crate::http::access::{Caller, Read, RunAccess};
use crate::hub::Hub;
use crate::ids::{Key, RunId};

/// Routes under `/v1/workflows/{id}/events`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(wait, set))
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
#[utoipa::path(get, path = "/v1/workflows/{id}/events",
    summary = "All events, or with Accept: text/event-stream an SSE of changes",
    params(("id" = Name, Path, description = "Run id"), ("after" = Option<Offset>, Query, description = "Version to resume after (SSE)"), ("timeout" = Option<Seconds>, Query, description = "Seconds to wait (capped by FLOWGATE_MAX_WAIT)"), ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "Events by key, or an SSE of `event` frames",
        content((std::collections::BTreeMap<String, Event> = "application/json"), (String = "text/event-stream"))),
        E400_404Auth))]
async fn list(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let run = access.run.as_str();
    list_on(&app, &app.hub, &access.caller, run, &headers, &q).await
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
#[utoipa::path(get, path = "/v1/workflows/{id}/events/{key}", summary = "An event once its version passes ?after",
    params(("id" = Name, Path, description = "Run id"), ("key" = Name, Path, description = "Event or stream key"), ("after" = Option<Offset>, Query, description = "Version already seen"), ("timeout" = Option<Seconds>, Query, description = "Seconds to wait (capped by FLOWGATE_MAX_WAIT)")),
    responses((status = 200, description = "The event", body = Event), (status = 204, description = "Timed out"),
        E400_404Auth))]
async fn wait(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    Names((run, key)): Names<(RunId, Key)>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    wait_on(RunReader::native(&app, &access, &run)?, key.as_str(), &q).await
}

/// Long-poll on event `key` of the run `r` reads.
pub(crate) async fn wait_on(
    r: RunReader<'_>,
    key: &str,
    q: &WaitQuery,
) -> Result<Response, ApiError> {
    let after = extract::offset("after", q.after.as_deref())?.unwrap_or(0);
    let wait = r.wait(q.timeout.as_deref())?;
    let mut sub = r.hub.subscribe_run(r.run);
    r.hub.source().require_run(r.run).await?;
    let _waiting = super::sse::GaugeGuard::inc(&r.app.metrics.long_polls_waiting);
    let found = tokio::select! {
        ev = sub.wait_event(key, after) => Some(ev),
        _ = tokio::time::sleep(wait) => None,
        _ = r.app.shutdown.cancelled() => None,
    };
    Ok(match found {
        Some(ev) => {
            r.app.metrics.events_delivered.inc();
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
#[utoipa::path(put, path = "/v1/workflows/{id}/events/{key}", summary = "Set an event (the body is its JSON value)",
    params(("id" = Name, Path, description = "Run id"), ("key" = Name, Path, description = "Event or stream key")), request_body = serde_json::Value,
    responses((status = 200, description = "Stored", body = Version), E400_404_409_413_415Auth))]
async fn set(
    State(app): State<AppState>,
    AdminWrite((run, key), value): AdminWrite<(RunId, Key), Box<serde_json::value::RawValue>>,
) -> Result<Response, ApiError> {
    check_readable("body", &value)?;
    if value.get().len() > app.config.max_value {
        return Err(ApiError::value_too_large(
            "body",
            "value",
            app.config.max_value,
        ));
    }
    let version = app.notifier.group().set_event(&run, &key, value).await?;
    Ok(Json(Version { version }).into_response())
}
