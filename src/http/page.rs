//! The page: HTML, CSS and JavaScript embedded in the binary so it works from any
//! directory. `/`, `/runs/{id}` and `/dbos/runs/{id}` serve the same HTML; its script reads
//! the run id from the address and follows the run over `GET /v1/workflows/{id}/live` (or
//! `/v1/dbos/workflows/{id}/live` for a DBOS run).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::extract::ApiPath;
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

/// `/`, `/runs/{id}` and `/static/{file}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/runs/{id}", get(index))
        .route("/dbos/runs/{id}", get(index))
        .route("/static/{file}", get(asset))
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

async fn index() -> Response {
    reply("text/html; charset=utf-8", INDEX)
}

async fn asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, kind, body)| reply(kind, body))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file"))
}
