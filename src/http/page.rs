//! The page, embedded in the binary so it works from any directory.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX: &str = include_str!("../../static/index.html");

/// `/` and `/runs/{id}` both serve the page; it reads the run id from the address.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/runs/{id}", get(index))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
}
