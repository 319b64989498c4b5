//! Errors: [`StoreError`] for the database layer, [`ApiError`] for HTTP responses.
//!
//! `ApiError` renders `{"error": {"code", "message", "field"}}`. Internal errors are logged
//! with their cause and answered with a generic 500 body: a database message never leaks.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What can go wrong talking to Postgres.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The run does not exist.
    #[error("run not found")]
    RunNotFound,
    /// A write conflicts with stored state (closed stream, reused idempotency key, …).
    #[error("{0}")]
    Conflict(String),
    /// Any other database error.
    #[error(transparent)]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            match db.code().as_deref() {
                Some("FG404") | Some("23503") => return StoreError::RunNotFound,
                Some("FG409") => return StoreError::Conflict(db.message().to_string()),
                _ => {}
            }
        }
        StoreError::Db(e)
    }
}

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
#[allow(missing_docs)] // a description would wrap the inlined detail in a oneOf
pub struct ErrorBody {
    #[schema(inline)]
    pub error: ErrorDetail,
}

/// `{code, message, field}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The input at fault, when there is one.
    #[schema(required = true)]
    pub field: Option<String>,
}

/// An HTTP error with a JSON body.
#[derive(Debug)]
pub struct ApiError {
    /// Response status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid_key`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    /// A 400 naming the field at fault.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("{field}: {message}"),
        )
        .with_field(field)
    }

    /// Sets the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 413 for a single value (record, event, message body) above the `max` bytes limit.
    pub fn value_too_large(field: impl Into<String>, what: &str, max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "value_too_large",
            format!("{what} exceeds {max} bytes"),
        )
        .with_field(field)
    }

    /// 404 for an unknown run.
    pub fn run_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "run_not_found",
            "no run with this id",
        )
        .with_field("id")
    }

    /// 500 that logs the cause and says nothing about it to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RunNotFound => ApiError::run_not_found(),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Db(e) => match e {
                sqlx::Error::PoolTimedOut => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "database busy",
                )
                .with_header("retry-after", "1"),
                // Postgres cannot hold a NUL character (`\u0000`) in jsonb or text.
                e if e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "22P05" || c == "22021") =>
                {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_value",
                        "JSON strings may not contain the NUL character (\\u0000)",
                    )
                }
                e => ApiError::internal(e),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = value.parse() {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
