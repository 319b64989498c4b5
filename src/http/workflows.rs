//! Workflow endpoints: start (with input validation, idempotency and the `?wait=` sync/async
//! pattern), list with cursor pagination (its parameters in [`super::run_list`]), cancel,
//! and the registered types.
//!
//! Waiting uses the hub's run subscription (status notes), never a polling loop.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::{IdStatus, RunPage, Started, WorkflowTypeInfo, WorkflowTypes};
use super::extract::{self, ApiJson, ApiQuery};
use super::openapi::errors::{E400_404Auth, E400_404_409Auth, E404Auth, StartErrors};
use super::openapi::schema::{Limit, Name, Retention, Seconds, StartedOrRun, Tags};
use super::AppState;
use crate::error::ApiError;
use crate::http::access::grant::GrantBody;
use crate::http::access::{AdminKey, Caller, Cancel, RunAccess};
use crate::ids::{RunId, WorkflowName};
use crate::runtime::runs::{self, StartError};
use crate::runtime::{Runtime, StartRequest};
use crate::store::RunRow;

/// Routes for starting, listing and cancelling workflows.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start, list))
        .routes(routes!(cancel))
        .routes(routes!(types))
}

/// `{workflow, input, id?, queue?}`
#[derive(Debug, Deserialize, ToSchema)]
pub struct StartBody {
    #[schema(value_type = Name)]
    workflow: String,
    #[serde(default)]
    input: Option<Value>,
    #[schema(value_type = Option<Name>)]
    id: Option<String>,
    #[schema(value_type = Option<Name>)]
    queue: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Retention>)]
    retention_secs: Option<Value>,
    #[serde(default, deserialize_with = "extract::null_default")]
    #[schema(value_type = Option<Tags>)]
    tags: Vec<String>,
    /// Who may approve this run and on which topic: the token handed back may mint approval
    /// links for exactly these (without it, the token only reads).
    approval: Option<GrantBody>,
}

/// `?wait=<secs>`
#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    /// Seconds to wait.
    pub wait: Option<String>,
}

fn runtime(app: &AppState) -> Result<&Runtime, ApiError> {
    app.runtime.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "workflow_not_found",
            "this server runs no workflows",
        )
        .with_field("workflow")
    })
}

fn start_error(e: StartError) -> Response {
    match e {
        StartError::UnknownWorkflow(w) => ApiError::new(
            StatusCode::NOT_FOUND,
            "workflow_not_found",
            format!("no workflow named {w:?} is registered"),
        )
        .with_field("workflow")
        .into_response(),
        StartError::UnknownQueue(q) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "queue_not_found",
            format!("no queue named {q:?} is served"),
        )
        .with_field("queue")
        .into_response(),
        StartError::Invalid(errors) => {
            let first = errors.first().map(|e| e.field.clone());
            let message = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let body = json!({"error": {
                "code": "invalid_input",
                "message": format!("input does not match the workflow's schema: {message}"),
                "field": first,
                "errors": errors,
            }});
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
        StartError::Conflict(id) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("run {id} exists with another workflow or input"),
        )
        .with_field("id")
        .into_response(),
        StartError::Store(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /v1/workflows`: 201 `{id, status}` (200 if the same id and input exist); with
/// `?wait=S`, 200 with the output if it finishes in time, else 202 with `Location`.
#[utoipa::path(post, path = "/v1/workflows", summary = "Start a workflow",
    params(("wait" = Option<Seconds>, Query, description = "Seconds to wait for the run to finish")),
    request_body = StartBody,
    responses(
        (status = 200, description = "Already started with this input, or finished within ?wait", body = StartedOrRun),
        (status = 201, description = "Started", body = Started),
        (status = 202, description = "Still running after ?wait", body = Started),
        StartErrors))]
async fn start(
    State(app): State<AppState>,
    AdminKey(caller): AdminKey,
    ApiQuery(q): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let rt = runtime(&app)?;
    let workflow = extract::name("workflow", body.workflow, WorkflowName::parse)?;
    let id = body
        .id
        .map(|i| extract::name("id", i, RunId::parse))
        .transpose()?;
    let queue = body
        .queue
        .map(|q| extract::name("queue", q, WorkflowName::parse).map(|q| q.to_string()))
        .transpose()?;
    let wait = match q.wait.as_deref() {
        Some(w) => Some(
            extract::timeout(Some(w), 0.0, app.config.max_wait_period())
                .map_err(|e| e.with_field("wait"))?,
        ),
        None => None,
    };
    let retention_secs = super::finish::retention_field(body.retention_secs.as_ref())?;
    let tags = extract::tags(body.tags)?;
    // Taken before starting: a refused wait must not have started the run.
    let permit = wait.map(|_| caller.stream_permit(&app.auth)).transpose()?;
    let grant = body.approval.map(GrantBody::parse).transpose()?;
    let input = body.input.unwrap_or_else(|| json!({}));
    let req = StartRequest {
        workflow: workflow.to_string(),
        input,
        id,
        queue,
        retention_secs,
        tags,
    };
    let started = match rt.start(req).await {
        Ok(s) => s,
        Err(e) => return Ok(start_error(e)),
    };
    let location = format!("/v1/workflows/{}", started.id);
    if let Some(wait) = wait {
        let _permit = permit;
        return Ok(match wait_finished(&app, &started.id, wait).await? {
            Some(row) => (StatusCode::OK, Json(row)).into_response(),
            None => (
                StatusCode::ACCEPTED,
                [("location", location)],
                Json(Started {
                    id: started.id,
                    status: started.status,
                    token: None,
                }),
            )
                .into_response(),
        });
    }
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let token = app.auth.start_token(&started.id, grant);
    Ok((
        status,
        [("location", location)],
        Json(Started {
            id: started.id,
            status: started.status,
            token: Some(token),
        }),
    )
        .into_response())
}

/// Waits up to `wait` for run `id` to finish; `None` if it did not (or on shutdown).
pub async fn wait_finished(
    app: &AppState,
    id: &str,
    wait: std::time::Duration,
) -> Result<Option<RunRow>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before reading, so a status change after the read still wakes us.
    let mut sub = app.hub.subscribe_run(id);
    loop {
        match app.store.get_run(id).await? {
            None => return Err(ApiError::run_not_found()),
            Some(row) if row.status.is_finished() => return Ok(Some(row)),
            Some(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
            _ = app.shutdown.cancelled() => return Ok(None),
            _ = sub.recv() => {}
        }
    }
}

/// `GET /v1/workflows`: newest first, `{workflows, next_cursor}`; with
/// `Accept: text/event-stream`, the live list (see [`super::run_list`]).
#[utoipa::path(get, path = "/v1/workflows",
    summary = "List runs, newest first; with Accept: text/event-stream the live list (`runs`, then a `run` per change)",
    params(
        ("status" = Option<String>, Query, description = "Filter by status"),
        ("workflow" = Option<String>, Query, description = "Filter by workflow"),
        ("tag" = Option<String>, Query, description = "Only runs with this tag"),
        ("limit" = Option<Limit>, Query, description = "Page size"),
        ("cursor" = Option<String>, Query, description = "Next page"),
        ("since" = Option<String>, Query, description = "Live list position to resume after (SSE)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume position sent by EventSource on reconnect")),
    responses((status = 200, description = "A page of runs, or the live list as SSE",
        content((RunPage = "application/json"), (String = "text/event-stream"))), E400_404Auth))]
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<super::run_list::ListParams>,
) -> Result<Response, ApiError> {
    let since = p.since.clone();
    let mut q = p.query()?;
    super::run_list::narrow_to_token(&caller, &mut q)?;
    if super::sse::wants_sse(&headers) {
        let permit = caller.stream_permit(&app.auth)?;
        return super::run_list::live(&app, permit, &headers, since.as_deref(), q);
    }
    let limit = q.limit;
    let rows = runs::list(&app.store, &q).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last())
        .flatten()
        .map(|r| format!("{}:{}", r.created_at.timestamp_micros(), r.id));
    Ok(Json(RunPage {
        workflows: rows,
        next_cursor: next,
    })
    .into_response())
}

/// `POST /v1/workflows/{id}/cancel` (API key, or a run token with the `cancel` scope):
/// `{id, status}`; 409 for an externally-run workflow.
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", summary = "Cancel a run",
    params(("id" = Name, Path, description = "Run id")),
    responses((status = 200, description = "Cancelled (or already finished)", body = IdStatus), E400_404_409Auth))]
async fn cancel(
    State(app): State<AppState>,
    access: RunAccess<Cancel>,
) -> Result<Response, ApiError> {
    let run = access.run;
    let rt = runtime(&app)?;
    match rt.cancel(&run).await? {
        None => Err(ApiError::run_not_found()),
        Some(s) if s.is_active() => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            "an externally-run workflow cannot be cancelled here",
        )),
        Some(status) => Ok(Json(IdStatus {
            id: run.to_string(),
            status,
        })
        .into_response()),
    }
}

/// `GET /v1/workflow-types`: `{workflows: [{name, input_schema}]}`.
#[utoipa::path(get, path = "/v1/workflow-types", summary = "Registered workflows and their input schemas",
    responses((status = 200, description = "Workflow types", body = WorkflowTypes), E404Auth))]
async fn types(State(app): State<AppState>, _admin: AdminKey) -> Response {
    let workflows = app
        .runtime
        .iter()
        .flat_map(|rt| rt.registry().visible())
        .map(|t| WorkflowTypeInfo {
            name: t.name.clone(),
            input_schema: t.input_schema.clone(),
        })
        .collect();
    Json(WorkflowTypes { workflows }).into_response()
}
