//! `/v1/dbos/…`: the runs of a DBOS app, served from DBOS's tables with the same API, SSE
//! framing, long-polls and live view as flowgate's own runs (the handlers in
//! [`crate::http`] run against the DBOS hub), plus messages and approval links into DBOS.
//!
//! Ids, keys and topics follow DBOS's charset: any text without control characters, up to
//! [`MAX_DBOS_NAME`] bytes, percent-encoded in paths. Every route answers 404
//! `dbos_not_configured` when `FLOWGATE_DBOS_URL` is unset.

pub mod openapi;
pub mod reads;
pub mod send;
pub mod start;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use super::AppState;
use crate::dbos::Dbos;
use crate::error::ApiError;

/// Longest DBOS workflow id, key or topic accepted.
pub const MAX_DBOS_NAME: usize = 512;

/// Token kinds for DBOS runs: signed like flowgate's, but a different kind, so a token for
/// a DBOS run never verifies as one for a flowgate run (or the other way round).
pub const RUN_TOKEN_KIND: &str = "dbos-run";
/// Approval links for DBOS runs.
pub const APPROVAL_KIND: &str = "dbos-approval";

/// Every `/v1/dbos` route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/dbos/workflows", get(reads::list).post(start::start))
        .route("/v1/dbos/workflows/{id}", get(reads::status))
        .route("/v1/dbos/workflows/{id}/events", get(reads::events))
        .route("/v1/dbos/workflows/{id}/events/{key}", get(reads::wait))
        .route("/v1/dbos/workflows/{id}/streams/{key}", get(reads::follow))
        .route(
            "/v1/dbos/workflows/{id}/streams/{key}/poll",
            get(reads::poll),
        )
        .route("/v1/dbos/workflows/{id}/live", get(reads::live))
        .route("/v1/dbos/workflows/{id}/messages", post(send::message))
        .route("/v1/dbos/workflows/{id}/tokens", post(send::token))
        .route("/v1/dbos/workflows/{id}/approval-links", post(send::mint))
        .route(
            "/v1/dbos/approvals/{token}",
            get(send::describe).post(send::use_link),
        )
}

/// The DBOS source, or 404 when none is configured.
pub(crate) fn source(app: &AppState) -> Result<&Dbos, ApiError> {
    app.dbos.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "dbos_not_configured",
            "this server has no DBOS source (set FLOWGATE_DBOS_URL)",
        )
    })
}

/// Validates a DBOS id, key or topic taken from `field`.
pub(crate) fn name(field: &str, value: String) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_DBOS_NAME {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_DBOS_NAME} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("id", "wf::a:b/c d".into()).is_ok());
        assert!(name("id", String::new()).is_err());
        assert!(name("id", "a\nb".into()).is_err());
        assert!(name("id", "x".repeat(MAX_DBOS_NAME + 1)).is_err());
    }
}
