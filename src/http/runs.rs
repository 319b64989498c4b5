//! Run records: read one, and create one for an externally-run workflow.

use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{self, AdminWrite};
use super::AppState;
use crate::error::ApiError;
use crate::http::access::{Read, RunAccess};
use crate::ids::{RunId, WorkflowName};
use crate::note::{Note, NoteKind};
use crate::store::RunRow;

/// Routes for `/v1/workflows/{id}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_run, put_run))
}

/// `{workflow, approval?: {topic?, approvers}}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PutBody {
    #[schema(value_type = Name)]
    workflow: String,
    #[serde(default)]
    #[schema(value_type = Option<Retention>)]
    retention_secs: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "extract::null_default")]
    #[schema(value_type = Option<Tags>)]
    tags: Vec<String>,
    /// Who may approve this run: the token handed back mints links for exactly these.
    approval: Option<crate::http::access::grant::GrantBody>,
}

/// `GET /v1/workflows/{id}`: the run's status (and output or error once finished);
/// `?wait=S` waits up to S seconds for it to finish first.
#[utoipa::path(get, path = "/v1/workflows/{id}", summary = "A run's status, output or error",
    params(("id" = Name, Path, description = "Run id"), ("wait" = Option<Seconds>, Query, description = "Seconds to wait for the run to finish")),
    responses((status = 200, description = "The run", body = RunRow), E400_404Auth))]
async fn get_run(
    State(app): State<AppState>,
    access: RunAccess<Read>,
    super::extract::ApiQuery(q): super::extract::ApiQuery<super::workflows::WaitQuery>,
) -> Result<Response, ApiError> {
    if let Some(w) = q.wait.as_deref() {
        // `?wait=S`: answer as soon as the run finishes, or with its state after S seconds.
        let wait = extract::timeout(Some(w), 0.0, app.config.max_wait_period())
            .map_err(|e| e.with_field("wait"))?;
        let _permit = access.caller.stream_permit(&app.auth)?;
        super::workflows::wait_finished(&app, access.run.as_str(), wait).await?;
    }
    match app.store.get_run(access.run.as_str()).await? {
        Some(row) => Ok(Json(row).into_response()),
        None => Err(ApiError::run_not_found()),
    }
}

/// A run created for an external producer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PutRun {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// False if it existed already.
    pub created: bool,
    /// A token to read the run (and decide, with an approval grant).
    pub token: String,
}

/// `PUT /v1/workflows/{id}`: 201 if created, 200 if it exists with the same workflow name,
/// 409 if it exists with another.
#[utoipa::path(put, path = "/v1/workflows/{id}", summary = "Create a run for an external producer",
    params(("id" = Name, Path, description = "Run id")), request_body = PutBody,
    responses((status = 200, description = "Exists", body = PutRun),
        (status = 201, description = "Created", body = PutRun), E400_409_413_415Auth))]
async fn put_run(
    State(app): State<AppState>,
    AdminWrite(run, body): AdminWrite<RunId, PutBody>,
) -> Result<Response, ApiError> {
    let workflow = extract::name("workflow", body.workflow, WorkflowName::parse)?;
    let retention = super::finish::retention_field(body.retention_secs.as_ref())?;
    let tags = extract::tags(body.tags)?;
    let grant = body
        .approval
        .map(crate::http::access::grant::GrantBody::parse)
        .transpose()?;
    let created = app
        .store
        .ensure_run(&run, &workflow, &tags, retention)
        .await?;
    if created {
        app.notifier
            .publish(Note::new(NoteKind::Status, run.as_str(), "", 0));
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let token = app.auth.start_token(run.as_str(), grant);
    Ok((
        status,
        Json(PutRun {
            id: run.to_string(),
            workflow: workflow.to_string(),
            created,
            token,
        }),
    )
        .into_response())
}
