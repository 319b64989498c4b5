//! `POST /v1/tokens` (API key): tag tokens, which read (and with `approve` and a grant,
//! approve) every run carrying one of their tags, the live run list narrowed to them
//! included, and nothing else. A client refreshes one by asking its own backend for a new
//! token when the server answers 401 `token_expired`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::extract::{self, ApiJson};
use super::AppState;
use crate::auth::token::{now, Scope, TagClaims};
use crate::error::ApiError;
use crate::http::access::grant::GrantBody;
use crate::http::access::AdminKey;

/// Longest tag token lifetime: 30 days.
pub const MAX_TTL: i64 = 30 * 86400;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tokens", post(mint))
}

/// `{tags, scopes?, ttl_secs?, approval?}`
#[derive(Debug, Deserialize)]
pub struct TagTokenBody {
    tags: Vec<String>,
    scopes: Option<Vec<Scope>>,
    ttl_secs: Option<i64>,
    approval: Option<GrantBody>,
}

async fn mint(
    State(app): State<AppState>,
    _admin: AdminKey,
    ApiJson(body): ApiJson<TagTokenBody>,
) -> Result<Response, ApiError> {
    let tags = extract::tags(body.tags)?;
    if tags.is_empty() {
        return Err(ApiError::invalid("tags", "must name at least one tag"));
    }
    let ttl = body.ttl_secs.unwrap_or(app.auth.token_ttl);
    if !(1..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_secs",
            format!("must be 1 to {MAX_TTL} seconds"),
        ));
    }
    let approval = body.approval.map(GrantBody::parse).transpose()?;
    let mut scopes = body.scopes.unwrap_or_else(|| vec![Scope::Read]);
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "must name at least one scope"));
    }
    if approval.is_some() && !scopes.contains(&Scope::Approve) {
        scopes.push(Scope::Approve);
    }
    let claims = TagClaims {
        tags: tags.as_slice().to_vec(),
        scopes: scopes.clone(),
        exp: now() + ttl,
        approval,
    };
    let token = app.auth.signer.tag_token(&claims);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "tags": claims.tags, "scopes": scopes, "expires_at": claims.exp })),
    )
        .into_response())
}
