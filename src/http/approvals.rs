//! Approval links: separate signed approve and reject URLs bound to (run, topic, approver,
//! decision), expiring, single-use. Using one sends the decision as a message exactly once;
//! any later use of either link of that approver is a no-op that reports the first decision.
//! GET only describes a link (mail scanners prefetch GETs); POST uses it. Who may mint
//! which links is decided in [`super::grant`].

use crate::http::bodies::{FirstUse, Link, LinkInfo, LinkUsed, Links, Minted};
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::grant::{self, GrantBody};
use super::access::{Approve, RunAccess};
use super::extract::{self, AdminWrite, ApiJson, ApiPath};
use super::AppState;
use crate::auth::token::{now, ApprovalClaims, Rights, RunClaims, Scope, TokenError};
use crate::error::ApiError;
use crate::ids::{RunId, Topic};
use crate::note::{Note, NoteKind};
use crate::store::approvals::{ApprovalUse, Decision};

/// Longest comment.
const MAX_COMMENT: usize = 2000;

/// Routes for minting, describing and using links, and minting run tokens.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mint))
        .routes(routes!(mint_token))
        .routes(routes!(describe, use_link))
}

/// `{topic?, ttl_secs?, approvers?}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MintBody {
    #[schema(value_type = Option<Name>)]
    pub(crate) topic: Option<String>,
    #[schema(value_type = Option<TtlSecs>)]
    pub(crate) ttl_secs: Option<i64>,
    #[schema(value_type = Option<Approvers>)]
    pub(crate) approvers: Option<Vec<String>>,
}

/// `POST /v1/workflows/{id}/approval-links`: one approve/reject pair per approver, within
/// the caller's approval authority.
#[utoipa::path(post, path = "/v1/workflows/{id}/approval-links", summary = "Mint approve/reject links per approver",
    params(("id" = Name, Path, description = "Run id")), request_body = MintBody,
    responses((status = 201, description = "Links", body = Links), E400_404_413_415Auth))]
async fn mint(
    State(app): State<AppState>,
    access: RunAccess<Approve>,
    ApiJson(body): ApiJson<MintBody>,
) -> Result<Response, ApiError> {
    let run = access.run;
    let ttl = grant::ttl(body.ttl_secs, 86400)?;
    if let Some(a) = &body.approvers {
        grant::check_approvers(a)?;
    }
    let m = grant::authorize(&app.auth, &access.caller, body.topic, body.approvers)?;
    let topic = extract::name("topic", m.topic, Topic::parse)?;
    grant::check_approvers(&m.approvers)?;
    app.store.require_run(&run).await?;
    let exp = m.exp_cap.map_or(now() + ttl, |cap| (now() + ttl).min(cap));
    let links = LinkMint {
        kind: "approval",
        prefix: "/v1/approvals/",
        run: run.to_string(),
        topic: topic.to_string(),
        exp,
        key: m.key.clone(),
    };
    Ok(links.mint(&app.auth, &m.approvers))
}

/// Approval links for one run and topic, signed as `kind` and served under `prefix`.
pub(crate) struct LinkMint {
    pub(crate) kind: &'static str,
    pub(crate) prefix: &'static str,
    pub(crate) run: String,
    pub(crate) topic: String,
    pub(crate) exp: i64,
    pub(crate) key: Option<String>,
}

impl LinkMint {
    /// 201 `{links: [{approver, approve_url, reject_url, expires_at}]}`: a single-use pair
    /// (one nonce) per approver.
    pub(crate) fn mint(self, auth: &crate::auth::Auth, approvers: &[String]) -> Response {
        let links = approvers
            .iter()
            .map(|approver| {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let link = |decision: &str| {
                    let claims = ApprovalClaims {
                        run: self.run.clone(),
                        topic: self.topic.clone(),
                        decision: decision.into(),
                        approver: approver.clone(),
                        nonce: nonce.clone(),
                        exp: self.exp,
                        key: self.key.clone(),
                    };
                    format!("{}{}", self.prefix, auth.signer.sign(self.kind, &claims))
                };
                Link {
                    approver: approver.clone(),
                    approve_url: link("approve"),
                    reject_url: link("reject"),
                    expires_at: self.exp,
                }
            })
            .collect();
        (StatusCode::CREATED, Json(Links { links })).into_response()
    }
}

/// `{scopes?, ttl_secs?, approval?: {topic?, approvers}}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenBody {
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub(crate) scopes: Option<Vec<Scope>>,
    #[schema(value_type = Option<TtlSecs>)]
    pub(crate) ttl_secs: Option<i64>,
    pub(crate) approval: Option<GrantBody>,
}

impl TokenBody {
    /// What a token minted from this body allows: `read` unless scopes are named, plus
    /// `approve` with a grant, for `ttl_secs` (else `default_ttl`).
    pub(crate) fn rights(self, default_ttl: i64) -> Result<Rights, ApiError> {
        let ttl = grant::ttl(self.ttl_secs, default_ttl)?;
        let approval = self.approval.map(GrantBody::parse).transpose()?;
        let scopes = self.scopes.unwrap_or_else(|| vec![Scope::Read]);
        Ok(Rights::new(scopes, approval, ttl))
    }
}

/// 201 with a run token of `kind` for `run`.
pub(crate) fn mint_run_token(app: &AppState, kind: &str, run: String, rights: Rights) -> Response {
    let expires_at = rights.exp;
    let token = app.auth.signer.sign(kind, &RunClaims { run, rights });
    (StatusCode::CREATED, Json(Minted { token, expires_at })).into_response()
}

/// `POST /v1/workflows/{id}/tokens` (API key): a run token for a browser; with `approval`,
/// it may mint links for those approvers on that topic (and `approve` is added to its scopes).
#[utoipa::path(post, path = "/v1/workflows/{id}/tokens", summary = "Mint a run token",
    params(("id" = Name, Path, description = "Run id")), request_body = TokenBody,
    responses((status = 201, description = "Token", body = Minted), E400_404_413_415Auth))]
async fn mint_token(
    State(app): State<AppState>,
    AdminWrite(run, body): AdminWrite<RunId, TokenBody>,
) -> Result<Response, ApiError> {
    let rights = body.rights(app.auth.token_ttl)?;
    app.store.require_run(&run).await?;
    Ok(mint_run_token(
        &app,
        "run",
        run.as_str().to_string(),
        rights,
    ))
}

/// The answer to an approval link that is expired (410) or not valid (403).
pub(crate) fn link_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "this approval link has expired",
        ),
        TokenError::Invalid => ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_link",
            "this approval link is not valid",
        ),
    }
}

fn verify(app: &AppState, token: &str) -> Result<ApprovalClaims, ApiError> {
    let claims = app.auth.signer.verify_approval(token).map_err(link_error)?;
    // A link minted with an API key dies with the key.
    if let Some(k) = &claims.key {
        if !app.auth.key_id_known(k) {
            return Err(ApiError::new(
                StatusCode::GONE,
                "link_revoked",
                "the key that minted this approval link is no longer valid",
            ));
        }
    }
    Ok(claims)
}

/// The first use of this approver's links, if any.
async fn first_use(app: &AppState, nonce: &str) -> Result<Option<ApprovalUse>, ApiError> {
    Ok(app.store.approval_use(nonce).await?)
}

/// `GET /v1/approvals/{token}`: what the link does and whether it was used. No side effect.
#[utoipa::path(get, path = "/v1/approvals/{token}", summary = "Describe an approval link (no side effect)",
    params(("token" = Opaque, Path, description = "The link's token")), responses((status = 200, description = "The link", body = LinkInfo), LinkDescribe))]
async fn describe(
    State(app): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let c = verify(&app, &token)?;
    let used = first_use(&app, &c.nonce).await?.map(|u| FirstUse {
        decision: u.decision,
        comment: u.comment,
        used_at: Some(u.used_at),
        approver: None,
    });
    Ok(Json(link_info(c, None, used)).into_response())
}

/// What an approval link does (for `source`'s runs), and its approver's first use.
pub(crate) fn link_info(
    c: ApprovalClaims,
    source: Option<&'static str>,
    used: Option<FirstUse>,
) -> LinkInfo {
    LinkInfo {
        source,
        run: c.run,
        topic: c.topic,
        decision: c.decision,
        approver: c.approver,
        expires_at: c.exp,
        used,
    }
}

/// `{comment?}`, the optional body of a decision.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = Comment)]
pub struct UseBody {
    #[schema(max_length = 2000)]
    comment: Option<String>,
}

impl UseBody {
    /// The comment sent with a decision (empty without a body); with `headers`, a body
    /// must say it is JSON.
    pub(crate) fn comment(
        body: &[u8],
        headers: Option<&axum::http::HeaderMap>,
    ) -> Result<String, ApiError> {
        if body.is_empty() {
            return Ok(String::new());
        }
        if let Some(h) = headers {
            extract::require_json(h)?;
        }
        let body: UseBody = extract::parse_json(body)?;
        let comment = body.comment.unwrap_or_default();
        if comment.len() > MAX_COMMENT {
            return Err(ApiError::invalid(
                "comment",
                format!("must be at most {MAX_COMMENT} bytes"),
            ));
        }
        Ok(comment)
    }
}

/// `POST /v1/approvals/{token}`: records the decision and sends it once.
#[utoipa::path(post, path = "/v1/approvals/{token}", summary = "Use an approval link: the decision is sent once",
    params(("token" = Opaque, Path, description = "The link's token")), request_body(content = Option<UseBody>, description = "An optional comment"),
    responses((status = 200, description = "Recorded, or already decided", body = LinkUsed), LinkUse))]
async fn use_link(
    State(app): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let c = verify(&app, &token)?;
    let comment = UseBody::comment(&body, Some(&headers))?;
    let approved = c.decision == "approve";
    let message = json!({"approved": approved, "comment": comment, "approver": c.approver});
    let decision = Decision {
        nonce: &c.nonce,
        run: &c.run,
        topic: &c.topic,
        approver: &c.approver,
        decision: &c.decision,
        comment: &comment,
        message: &message,
    };
    let Some(message_id) = app.store.record_decision(&decision).await? else {
        let first = first_use(&app, &c.nonce).await?.unwrap_or_default();
        let used = LinkUsed::already(first.decision, first.comment, Some(first.used_at));
        return Ok(Json(used).into_response());
    };
    app.notifier.publish(Note::new(
        NoteKind::Message,
        c.run.as_str(),
        c.topic.as_str(),
        message_id,
    ));
    Ok(Json(LinkUsed::recorded(c.decision, message_id.into())).into_response())
}
