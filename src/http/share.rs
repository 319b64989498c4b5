//! What the holder of a credential may do with one run, and read-only links to share it.
//!
//! - `GET /v1/workflows/{id}/access`: `{read, approve, cancel, approvers}` for the caller, so
//!   a page shows the approve and cancel buttons only to those the API would let through
//!   (`approvers`: the names links may be minted for, `null` for any name).
//! - `POST /v1/workflows/{id}/share`: `{path, token, expires_at}`, a link that only reads:
//!   whoever holds a run's page can hand out a view of it, never its decision. A keyless
//!   (loopback) server needs no token, so its link is the bare `/runs/{id}`; otherwise the
//!   token reads this run only and expires no later than the caller's own credential.

use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::auth::token::{now, ApprovalGrant, Rights, RunClaims, Scope, TagClaims};
use crate::error::ApiError;
use crate::http::access::{Read, RunAccess, Who};

/// Routes for `/access` and `/share`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(access))
        .routes(routes!(share))
}

/// What the caller may do with a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    /// May read it (always true: the caller got this far).
    pub read: bool,
    /// May approve or reject it.
    pub approve: bool,
    /// May cancel it.
    pub cancel: bool,
    /// The names approval links may be minted for (`null`: any name).
    #[schema(required = true)]
    pub approvers: Option<Vec<String>>,
}

/// A read-only link to a run's page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Share {
    /// The page's path, with its token.
    pub path: String,
    /// The read-only token (`null` on a keyless server).
    #[schema(required = true)]
    pub token: Option<String>,
    /// When the token expires (Unix seconds; `null` on a keyless server).
    #[schema(required = true)]
    pub expires_at: Option<i64>,
}

/// Scopes, grant and expiry of the caller's credential (`None` scopes: an administrator).
fn reach(who: &Who) -> (Option<&[Scope]>, Option<&ApprovalGrant>, Option<i64>) {
    match who {
        Who::Run(RunClaims { rights: r, .. }) | Who::Tags(TagClaims { rights: r, .. }) => {
            (Some(&r.scopes), r.approval.as_ref(), Some(r.exp))
        }
        _ => (None, None, None),
    }
}

#[utoipa::path(get, path = "/v1/workflows/{id}/access",
    summary = "What the caller may do with this run (for showing buttons)",
    params(("id" = Name, Path, description = "Run id")), responses((status = 200, description = "Allowed actions", body = Access), E400_404Auth))]
async fn access(
    State(app): State<AppState>,
    access: RunAccess<Read>,
) -> Result<Response, ApiError> {
    app.store.require_run(&access.run).await?;
    let (scopes, grant, _) = reach(&access.caller.who);
    let body = match scopes {
        None => Access {
            read: true,
            approve: true,
            cancel: true,
            approvers: None,
        },
        Some(s) => {
            let approve = s.contains(&Scope::Approve) && grant.is_some();
            let approvers = match grant {
                Some(g) if approve => g.approvers.clone(),
                _ => Vec::new(),
            };
            Access {
                read: true,
                approve,
                cancel: s.contains(&Scope::Cancel),
                approvers: Some(approvers),
            }
        }
    };
    Ok(Json(body).into_response())
}

#[utoipa::path(post, path = "/v1/workflows/{id}/share", summary = "A read-only link to this run",
    params(("id" = Name, Path, description = "Run id")), responses((status = 200, description = "The link", body = Share), E400_404Auth))]
async fn share(State(app): State<AppState>, access: RunAccess<Read>) -> Result<Response, ApiError> {
    let run = access.run;
    app.store.require_run(&run).await?;
    let path = format!("/runs/{}", urlencoding(run.as_str()));
    if app.auth.open() {
        return Ok(Json(Share {
            path,
            token: None,
            expires_at: None,
        })
        .into_response());
    }
    let (_, _, exp) = reach(&access.caller.who);
    let until = exp.map_or(now() + app.auth.token_ttl, |e| {
        e.min(now() + app.auth.token_ttl)
    });
    let ttl = (until - now()).max(1);
    let token = app.auth.signer.run_token(run.as_str(), Rights::read(ttl));
    Ok(Json(Share {
        path: format!("{path}?token={token}"),
        token: Some(token),
        expires_at: Some(now() + ttl),
    })
    .into_response())
}

/// Run ids are `A-Z a-z 0-9 _ - . : @`; `:` and `@` are the only ones a path encodes.
fn urlencoding(id: &str) -> String {
    id.replace(':', "%3A").replace('@', "%40")
}
