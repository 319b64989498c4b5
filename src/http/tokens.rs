//! `POST /v1/tokens` (API key): tag tokens, which read (and with `approve` and a grant,
//! approve) every run carrying one of their tags, the live run list narrowed to them
//! included, and nothing else. A client refreshes one by asking its own backend for a new
//! token when the server answers 401 `token_expired`.

use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{self, ApiJson};
use super::AppState;
use crate::auth::token::{Rights, Scope, TagClaims};
use crate::error::ApiError;
use crate::http::access::grant::{self, GrantBody};
use crate::http::access::AdminKey;

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mint))
}

/// `{tags, scopes?, ttl_secs?, approval?}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TagTokenBody {
    #[schema(value_type = Vec<Tag>, min_items = 1, max_items = 10)]
    tags: Vec<String>,
    #[schema(value_type = Option<Vec<ScopeName>>, min_items = 1)]
    scopes: Option<Vec<Scope>>,
    #[schema(value_type = Option<TtlSecs>)]
    ttl_secs: Option<i64>,
    approval: Option<GrantBody>,
}

/// A tag token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagToken {
    /// The token.
    pub token: String,
    /// The tags it reaches.
    pub tags: Vec<String>,
    /// What it allows.
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/v1/tokens",
    summary = "Mint a tag token (reads, and with a grant approves, every run carrying one of its tags)",
    request_body = TagTokenBody,
    responses((status = 201, description = "Token", body = TagToken), E400_413_415Auth))]
async fn mint(
    State(app): State<AppState>,
    _admin: AdminKey,
    ApiJson(body): ApiJson<TagTokenBody>,
) -> Result<Response, ApiError> {
    let tags = extract::tags(body.tags)?;
    if tags.is_empty() {
        return Err(ApiError::invalid("tags", "must name at least one tag"));
    }
    let ttl = grant::ttl(body.ttl_secs, app.auth.token_ttl)?;
    let approval = body.approval.map(GrantBody::parse).transpose()?;
    let scopes = body.scopes.unwrap_or_else(|| vec![Scope::Read]);
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "must name at least one scope"));
    }
    let claims = TagClaims {
        tags: tags.as_slice().to_vec(),
        rights: Rights::new(scopes, approval, ttl),
    };
    let token = app.auth.signer.tag_token(&claims);
    Ok((
        StatusCode::CREATED,
        Json(TagToken {
            token,
            tags: claims.tags,
            scopes: claims.rights.scopes,
            expires_at: claims.rights.exp,
        }),
    )
        .into_response())
}
