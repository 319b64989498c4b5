//! Message endpoint: send to a run's topic, deduplicated by an optional idempotency key.

use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{self, AdminWrite};
use super::AppState;
use crate::error::ApiError;
use crate::ids::{RunId, Topic, MAX_NAME_LEN};

/// Routes under `/v1/workflows/{id}/messages`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send))
}

/// `{topic, body, idempotency_key?}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SendBody {
    #[schema(value_type = Name)]
    topic: String,
    body: Value,
    #[schema(value_type = Option<IdempotencyKey>)]
    idempotency_key: Option<String>,
}

/// A queued message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// Its id.
    pub message_id: i64,
    /// True if its idempotency key was used before (nothing new was stored).
    pub duplicate: bool,
}

/// `POST …/messages`: 202 `{message_id, duplicate}`.
#[utoipa::path(post, path = "/v1/workflows/{id}/messages", summary = "Send a message to a run",
    params(("id" = Name, Path, description = "Run id")), request_body = SendBody,
    responses((status = 202, description = "Queued", body = Queued), E400_404_409_413_415Auth))]
async fn send(
    State(app): State<AppState>,
    AdminWrite(run, req): AdminWrite<RunId, SendBody>,
) -> Result<Response, ApiError> {
    let topic = extract::name("topic", req.topic, Topic::parse)?;
    if let Some(k) = &req.idempotency_key {
        if k.is_empty() || k.len() > MAX_NAME_LEN {
            return Err(ApiError::invalid(
                "idempotency_key",
                format!("must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
    }
    let size = serde_json::to_string(&req.body)
        .map(|s| s.len())
        .unwrap_or(0);
    if size > app.config.max_value {
        return Err(ApiError::value_too_large(
            "body",
            "body",
            app.config.max_value,
        ));
    }
    let (message_id, duplicate) = app
        .notifier
        .group()
        .send(&run, &topic, req.body, req.idempotency_key)
        .await?;
    if !duplicate {
        app.metrics.messages_sent.inc();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            message_id,
            duplicate,
        }),
    )
        .into_response())
}
