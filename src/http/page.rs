//! The page: HTML, CSS and JavaScript embedded in the binary so it works from any
//! directory. `/` and `/runs/{id}` serve the same HTML; the script reads the run id from the
//! address and follows it over `GET /v1/workflows/{id}/live`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX: &str = include_str!("../../static/index.html");
const SCRIPT: &str = include_str!("../../static/page.js");
const STYLE: &str = include_str!("../../static/page.css");

/// `/`, `/runs/{id}` and the page's script and style sheet.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/runs/{id}", get(index))
        .route("/static/page.js", get(script))
        .route("/static/page.css", get(style))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}
