//! `POST /v1/workflows/{id}/finish`: an external producer marks its run finished (with an
//! optional `outcome` such as `rejected` beside the status), so that pages and `?wait`
//! waiters see the outcome and retention starts counting. Runs of the
//! workflow runtime finish themselves (409 here).

use crate::http::bodies::IdStatus;
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::AdminWrite;
use super::AppState;
use crate::error::{ApiError, StoreError};
use crate::ids::RunId;
use crate::note::{Note, NoteKind};
use crate::store::RunStatus;

/// Longest per-run retention accepted: ten years.
pub const MAX_RETENTION_SECS: i64 = 10 * 365 * 86400;

/// Route for finishing an external run.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(finish))
}

/// `{status, output?, error?, outcome?}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FinishBody {
    #[schema(value_type = FinishStatus)]
    status: String,
    /// How the run ended, beside its status (e.g. `rejected`); by default `succeeded`,
    /// `failed` or `cancelled` from the status.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    outcome: Option<String>,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// Validates an optional `retention_secs` field: an integer from 0 (keep forever) to ten years.
pub fn retention_field(v: Option<&Value>) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (0..=MAX_RETENTION_SECS).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                "retention_secs",
                format!("must be an integer from 0 (keep forever) to {MAX_RETENTION_SECS}"),
            )),
        },
    }
}

#[utoipa::path(post, path = "/v1/workflows/{id}/finish",
    summary = "Mark an external run finished (pages and ?wait waiters see it)",
    params(("id" = Name, Path, description = "Run id")), request_body = FinishBody,
    responses((status = 200, description = "Finished (or already finished with this status)", body = IdStatus),
        E400_404_409_413_415Auth))]
async fn finish(
    State(app): State<AppState>,
    AdminWrite(run, body): AdminWrite<RunId, FinishBody>,
) -> Result<Response, ApiError> {
    let Some(status) = RunStatus::parse(&body.status).filter(|s| s.is_finished()) else {
        return Err(ApiError::invalid(
            "status",
            "must be SUCCESS, ERROR or CANCELLED",
        ));
    };
    if let Some(o) = &body.outcome {
        crate::store::runs::check_outcome(o).map_err(|e| ApiError::invalid("outcome", e))?;
    }
    for (field, v) in [("output", &body.output), ("error", &body.error)] {
        if v.as_ref()
            .is_some_and(|v| v.to_string().len() > app.config.max_value)
        {
            return Err(ApiError::value_too_large(
                field,
                field,
                app.config.max_value,
            ));
        }
    }
    let status = match app
        .store
        .finish_run(
            &run,
            status,
            body.output.as_ref(),
            body.error.as_ref(),
            body.outcome.as_deref(),
        )
        .await
    {
        Ok(s) => s,
        Err(StoreError::Conflict(m)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "not_finishable", m).with_field("id"))
        }
        Err(e) => return Err(e.into()),
    };
    app.notifier
        .publish(Note::new(NoteKind::Status, run.as_str(), "", 0));
    Ok(Json(IdStatus {
        id: run.to_string(),
        status,
    })
    .into_response())
}
