//! The page: HTML, CSS and JavaScript embedded in the binary so it works from any
//! directory. `/`, `/runs/{id}` and `/dbos/runs/{id}` serve the same HTML; its script reads
//! the run id from the address and follows the run over `GET /v1/workflows/{id}/live` (or
//! `/v1/dbos/workflows/{id}/live` for a DBOS run).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiPath;
use super::openapi::errors::NotFound;
use super::openapi::schema::{DbosName, Opaque};
use super::AppState;
use crate::error::ApiError;

const INDEX: &str = include_str!("../../static/index.html");

/// The page's assets under `/static/`: (file name, content type, contents).
const ASSETS: [(&str, &str, &str); 7] = [
    (
        "flowgate.js",
        "text/javascript; charset=utf-8",
        include_str!("../../clients/js/flowgate.js"),
    ),
    (
        "page.css",
        "text/css; charset=utf-8",
        include_str!("../../static/page.css"),
    ),
    (
        "page.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/page.js"),
    ),
    (
        "run.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/run.js"),
    ),
    (
        "actions.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/actions.js"),
    ),
    (
        "timeline.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/timeline.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/ui.js"),
    ),
];

/// `/`, `/runs/{id}`, `/dbos/runs/{id}` and `/static/{file}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(run_page))
        .routes(routes!(dbos_run_page))
        .routes(routes!(asset))
}

fn reply(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The page.
#[utoipa::path(get, path = "/", summary = "The page",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
async fn index() -> Response {
    reply("text/html; charset=utf-8", INDEX)
}

/// The page, showing one run.
#[utoipa::path(get, path = "/runs/{id}", summary = "The page, showing one run",
    params(("id" = Opaque, Path, description = "Run id")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
async fn run_page() -> Response {
    index().await
}

/// The page, showing one DBOS workflow.
#[utoipa::path(get, path = "/dbos/runs/{id}", summary = "The page, showing one DBOS workflow",
    params(("id" = DbosName, Path, description = "DBOS workflow id")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
async fn dbos_run_page() -> Response {
    index().await
}

/// A page asset.
#[utoipa::path(get, path = "/static/{file}", summary = "A page asset",
    params(("file" = Opaque, Path, description = "File name")),
    responses((status = 200, description = "The asset", content(
        (String = "text/css"), (String = "text/javascript"))), NotFound))]
async fn asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, kind, body)| reply(kind, body))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file"))
}
