//! Who may call what under `/v1/stream/`, decided from the path the handler itself parses
//! (see [`crate::http::access`] for the extractors the other routes use):
//!
//! - workflow streams (`workflows/{run}/{key}`): GET and HEAD with the run's read token or
//!   an API key;
//! - every other stream, any method: an API key;
//! - `__ds/jwks.json`: anyone; `__ds/subscriptions/{id}/callback`, `…/ack` and `…/release`:
//!   the wake's own token as `Authorization: Bearer` (checked against the open wake, so an
//!   API key there is answered 409 `FENCED`); the rest of `__ds/` (create, read, delete,
//!   link, `claim`): an API key.

use axum::http::{HeaderMap, Method, StatusCode};

use super::fail;
use super::read::workflow_run;
use super::subs::bearer;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::http::access::Caller;

/// Who may read or write stream `path` with `method` (a CORS preflight: anyone).
pub fn stream(caller: &Caller, method: &Method, path: &str) -> Result<(), ApiError> {
    match workflow_run(path) {
        _ if method == Method::OPTIONS => Ok(()),
        Some(run) if method == Method::GET || method == Method::HEAD => {
            caller.require_run(run, Scope::Read)
        }
        _ => caller.require_admin(),
    }
}

/// Who may call `__ds/{rest}`: the JWKS is public; `callback`, `ack` and `release` carry
/// the wake's own token as the bearer credential (checked against the open wake, so an API
/// key there is fenced); everything else (create, read, delete, link, `claim`) needs an API
/// key.
pub fn subscription(
    caller: &Caller,
    method: &Method,
    rest: &str,
    h: &HeaderMap,
) -> Result<(), ApiError> {
    if rest == "jwks.json" && method == Method::GET {
        return Ok(());
    }
    // Parsed as `handle` parses it: `subscriptions/{id}/{tail}`.
    let tail = rest
        .strip_prefix("subscriptions/")
        .and_then(|r| r.split_once('/'))
        .map(|(_, tail)| tail);
    let callback = matches!(tail, Some("callback" | "ack" | "release"));
    if callback && *method == Method::POST {
        if bearer(h).is_empty() {
            return Err(fail(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the wake's token is required (Authorization: Bearer <token>)",
            )
            .with_header("www-authenticate", "Bearer"));
        }
        return Ok(());
    }
    caller.require_admin()
}
