//! `POST /v1/dbos/workflows`: starts a DBOS workflow by enqueuing it on one of the app's
//! queues through DBOS's own `enqueue_workflow` SQL function (inputs as portable JSON). The
//! DBOS app's queue workers run it; flowgate only writes the row DBOS would.

use crate::http::bodies::IdStatus;
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use crate::store::RunStatus;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{name, source};
use crate::error::ApiError;
use crate::http::access::AdminKey;
use crate::http::extract::{null_default, ApiJson};
use crate::http::AppState;
use crate::store::dbos::Enqueue;

/// Most positional arguments.
const MAX_ARGS: usize = 100;

/// `{workflow, queue, args?, kwargs?, id?, app_version?}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DbosStartBody)]
pub struct StartBody {
    #[schema(value_type = DbosName)]
    workflow: String,
    #[schema(value_type = DbosName)]
    queue: String,
    #[serde(default, deserialize_with = "null_default")]
    args: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    #[schema(value_type = Option<AnyObject>)]
    kwargs: Map<String, Value>,
    #[schema(value_type = Option<DbosName>)]
    id: Option<String>,
    #[schema(value_type = Option<DbosName>)]
    app_version: Option<String>,
}

/// 201 `{id, status}`; 200 with the current status if the id already exists.
#[utoipa::path(post, path = "/v1/dbos/workflows",
    summary = "DBOS: start a workflow on one of the app's queues (dbos.enqueue_workflow)",
    request_body = StartBody,
    responses((status = 200, description = "A workflow with this id exists", body = IdStatus),
        (status = 201, description = "Enqueued", body = IdStatus), E400_404_413_415Auth))]
pub async fn start(
    State(app): State<AppState>,
    _admin: AdminKey,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let dbos = source(&app)?;
    if !dbos.info.has_enqueue {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "dbos_enqueue_unavailable",
            "this DBOS schema has no enqueue_workflow function",
        ));
    }
    let workflow = name("workflow", body.workflow)?;
    let queue = name("queue", body.queue)?;
    let id = body.id.map(|i| name("id", i)).transpose()?;
    let app_version = body
        .app_version
        .map(|v| name("app_version", v))
        .transpose()?;
    if body.args.len() > MAX_ARGS {
        return Err(ApiError::invalid(
            "args",
            format!("at most {MAX_ARGS} arguments"),
        ));
    }
    let args: Vec<String> = body.args.iter().map(Value::to_string).collect();
    let kwargs = Value::Object(body.kwargs).to_string();
    let size = args.iter().map(String::len).sum::<usize>() + kwargs.len();
    if size > app.config.max_value {
        return Err(ApiError::value_too_large(
            "args",
            "input",
            app.config.max_value,
        ));
    }
    if let Some(existing) = match &id {
        Some(i) => dbos.store.get_run(i).await?,
        None => None,
    } {
        let view = IdStatus {
            id: existing.id,
            status: existing.status,
        };
        return Ok((StatusCode::OK, Json(view)).into_response());
    }
    let started = dbos
        .store
        .enqueue(&Enqueue {
            workflow: &workflow,
            queue: &queue,
            args,
            kwargs,
            id: id.as_deref(),
            app_version: app_version.as_deref(),
        })
        .await?;
    let view = IdStatus {
        id: started,
        status: RunStatus::Enqueued,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}
