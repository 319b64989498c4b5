//! `/v1/dbos/…`: the runs of a DBOS app, served from DBOS's tables with the same API, SSE
//! framing, long-polls and live view as flowgate's own runs (the handlers in
//! [`crate::http`] run against the DBOS hub), plus messages and approval links into DBOS.
//!
//! Ids, keys and topics follow DBOS's charset: any text without control characters, up to
//! [`MAX_DBOS_NAME`] bytes, percent-encoded in paths. Every route answers 404
//! `dbos_not_configured` when `FLOWGATE_DBOS_URL` is unset.

pub mod reads;
pub mod send;
pub mod start;

use axum::http::StatusCode;

use super::AppState;
use crate::dbos::Dbos;
use crate::error::ApiError;
use crate::http::extract::PathNames;
use crate::http::openapi::schema::DbosName;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest DBOS workflow id, key or topic accepted.
pub const MAX_DBOS_NAME: usize = 512;

/// Token kinds for DBOS runs: signed like flowgate's, but a different kind, so a token for
/// a DBOS run never verifies as one for a flowgate run (or the other way round).
pub const RUN_TOKEN_KIND: &str = "dbos-run";
/// Approval links for DBOS runs.
pub const APPROVAL_KIND: &str = "dbos-approval";

/// Every `/v1/dbos` route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reads::list, start::start))
        .routes(routes!(reads::status))
        .routes(routes!(reads::events))
        .routes(routes!(reads::wait))
        .routes(routes!(reads::follow))
        .routes(routes!(reads::poll))
        .routes(routes!(reads::live))
        .routes(routes!(send::message))
        .routes(routes!(send::token))
        .routes(routes!(send::mint))
        .routes(routes!(send::describe, send::use_link))
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

/// `{id}`: a DBOS workflow id, checked by [`name`]; as `params(DbosId)`, its documentation.
#[derive(utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct DbosId(
    /// DBOS workflow id
    #[param(value_type = DbosName)]
    pub String,
);

impl PathNames for DbosId {
    type Raw = String;
    fn check(id: String) -> Result<Self, ApiError> {
        name("id", id).map(DbosId)
    }
}

/// `{id}`, `{key}`: a DBOS workflow id and an event or stream key, checked by [`name`]; as
/// `params(DbosIdKey)`, their documentation.
#[derive(utoipa::IntoParams)]
#[into_params(names("id", "key"), parameter_in = Path)]
pub struct DbosIdKey(
    /// DBOS workflow id
    #[param(value_type = DbosName)]
    pub String,
    /// Event or stream key
    #[param(value_type = DbosName)]
    pub String,
);

impl PathNames for DbosIdKey {
    type Raw = (String, String);
    fn check((id, key): (String, String)) -> Result<Self, ApiError> {
        Ok(DbosIdKey(name("id", id)?, name("key", key)?))
    }
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
