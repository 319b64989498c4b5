//! Into DBOS: messages through DBOS's own `send_message` SQL function, run tokens for DBOS
//! runs, and approval links whose decision reaches a workflow waiting in `DBOS.recv`.
//!
//! Exactly once: DBOS stores a message under its `message_uuid` with `ON CONFLICT DO
//! NOTHING` and keeps consumed rows, so a repeated send with the same id is a no-op. An
//! idempotency key is used as that id; the approve and reject links of one approver share
//! the id `flowgate-approval:<nonce>`, so whichever is used first is the decision and the
//! other becomes a no-op that reports it. No flowgate table is involved.

use crate::http::approvals::{link_info, mint_run_token, MintBody, TokenBody, UseBody};
use crate::http::bodies::{DbosQueued, FirstUse, LinkInfo, LinkUsed, Links, Minted};
use crate::http::openapi::errors::*;
use crate::http::openapi::schema::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::reads::require;
use super::{name, source, DbosId, APPROVAL_KIND, RUN_TOKEN_KIND};
use crate::auth::token::{now, ApprovalClaims, RunClaims, Scope};
use crate::error::ApiError;
use crate::http::access::grant::{check_approvers, ttl};
use crate::http::access::{forbidden, AdminKey, Caller};
use crate::http::extract::{ApiJson, ApiPath, Names};
use crate::http::AppState;

/// `{topic, body, idempotency_key?}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DbosSendBody)]
pub struct SendBody {
    #[schema(value_type = DbosName)]
    topic: String,
    body: Value,
    #[schema(value_type = Option<DbosName>)]
    idempotency_key: Option<String>,
}

/// `POST /v1/dbos/workflows/{id}/messages`: 202 `{message_id, duplicate}`; 404 if the
/// workflow does not exist.
#[utoipa::path(post, path = "/v1/dbos/workflows/{id}/messages",
    summary = "DBOS: send a message (through dbos.send_message; idempotent by key)",
    params(DbosId), request_body = SendBody,
    responses((status = 202, description = "Sent", body = DbosQueued), E400_404_413_415Auth))]
pub async fn message(
    State(app): State<AppState>,
    _admin: AdminKey,
    Names(DbosId(id)): Names<DbosId>,
    ApiJson(req): ApiJson<SendBody>,
) -> Result<Response, ApiError> {
    let dbos = source(&app)?;
    let topic = name("topic", req.topic)?;
    let message_id = match req.idempotency_key {
        Some(k) => name("idempotency_key", k)?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let body = req.body.to_string();
    if body.len() > app.config.max_value {
        return Err(ApiError::value_too_large(
            "body",
            "body",
            app.config.max_value,
        ));
    }
    require(&app, &id).await?;
    let duplicate = dbos.store.message(&message_id).await?.is_some();
    if !duplicate {
        dbos.store
            .send_message(&id, &topic, &body, &message_id)
            .await?;
        app.metrics.messages_sent.inc();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(DbosQueued {
            message_id,
            duplicate,
        }),
    )
        .into_response())
}

/// `POST /v1/dbos/workflows/{id}/tokens` (API key): a run token for this DBOS run only.
#[utoipa::path(post, path = "/v1/dbos/workflows/{id}/tokens", summary = "DBOS: mint a run token",
    params(DbosId), request_body = TokenBody,
    responses((status = 201, description = "Token", body = Minted), E400_404_413_415Auth))]
pub async fn token(
    State(app): State<AppState>,
    _admin: AdminKey,
    Names(DbosId(id)): Names<DbosId>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    let rights = body.rights(app.auth.token_ttl)?;
    require(&app, &id).await?;
    Ok(mint_run_token(&app, RUN_TOKEN_KIND, id, rights))
}

/// `POST /v1/dbos/workflows/{id}/approval-links`: one approve/reject pair per approver.
#[utoipa::path(post, path = "/v1/dbos/workflows/{id}/approval-links", summary = "DBOS: mint approve/reject links per approver",
    params(DbosId), request_body = MintBody,
    responses((status = 201, description = "Links", body = Links), E400_404_413_415Auth))]
pub async fn mint(
    State(app): State<AppState>,
    caller: Caller,
    Names(DbosId(id)): Names<DbosId>,
    ApiJson(body): ApiJson<MintBody>,
) -> Result<Response, ApiError> {
    caller.require_run_of_kind(&app.auth, RUN_TOKEN_KIND, &id, Scope::Approve)?;
    let ttl = ttl(body.ttl_secs, 86400)?;
    // A key mints for anyone on any topic; a DBOS run token only within its grant, and its
    // links expire with it (plus the configured grace).
    let (topic, approvers, cap) = if caller.is_admin() {
        let topic = body.topic.unwrap_or_else(|| "approval".into());
        let approvers = body.approvers.unwrap_or_else(|| vec!["approver".into()]);
        (topic, approvers, None)
    } else {
        let presented = caller.credential.as_deref().unwrap_or_default();
        let claims = app
            .auth
            .signer
            .verify(RUN_TOKEN_KIND, presented, |c: &RunClaims| c.rights.exp)
            .map_err(|_| forbidden("invalid token"))?;
        let grant = claims
            .rights
            .approval
            .ok_or_else(|| forbidden("this token may not mint approval links"))?;
        let topic = body.topic.unwrap_or_else(|| grant.topic.clone());
        let approvers = body.approvers.unwrap_or_else(|| grant.approvers.clone());
        if topic != grant.topic || approvers.iter().any(|a| !grant.approvers.contains(a)) {
            return Err(forbidden(
                "this token may not mint links for this topic or these approvers",
            ));
        }
        (
            topic,
            approvers,
            Some(claims.rights.exp.saturating_add(app.auth.link_grace)),
        )
    };
    let topic = name("topic", topic)?;
    check_approvers(&approvers)?;
    require(&app, &id).await?;
    let exp = cap.map_or(now() + ttl, |c| c.min(now() + ttl));
    let links = crate::http::approvals::LinkMint {
        kind: APPROVAL_KIND,
        prefix: "/v1/dbos/approvals/",
        run: id,
        topic,
        exp,
        key: None,
    };
    Ok(links.mint(&app.auth, &approvers))
}

fn verify(app: &AppState, token: &str) -> Result<ApprovalClaims, ApiError> {
    app.auth
        .signer
        .verify(APPROVAL_KIND, token, |c: &ApprovalClaims| c.exp)
        .map_err(crate::http::approvals::link_error)
}

fn message_id(c: &ApprovalClaims) -> String {
    format!("flowgate-approval:{}", c.nonce)
}

/// The decision already sent for these claims' approver, if any.
async fn sent(app: &AppState, c: &ApprovalClaims) -> Result<Option<Value>, ApiError> {
    Ok(source(app)?.store.message(&message_id(c)).await?)
}

fn decision_of(message: &Value) -> &'static str {
    if message["approved"] == json!(true) {
        "approve"
    } else {
        "reject"
    }
}

/// `GET /v1/dbos/approvals/{token}`: what the link does and whether it was used.
#[utoipa::path(get, path = "/v1/dbos/approvals/{token}", summary = "DBOS: describe an approval link (no side effect)",
    params(("token" = Opaque, Path, description = "The link's token")), responses((status = 200, description = "The link", body = LinkInfo), DbosLinkDescribe))]
pub async fn describe(
    State(app): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let c = verify(&app, &token)?;
    let used = sent(&app, &c).await?.map(|m| FirstUse {
        decision: decision_of(&m).into(),
        comment: text(&m["comment"]),
        used_at: None,
        approver: text(&m["approver"]),
    });
    Ok(Json(link_info(c, Some("dbos"), used)).into_response())
}

/// `POST /v1/dbos/approvals/{token}`: sends the decision to the DBOS workflow once.
#[utoipa::path(post, path = "/v1/dbos/approvals/{token}", summary = "DBOS: use an approval link (sent to the workflow once)",
    params(("token" = Opaque, Path, description = "The link's token")), request_body(content = Option<UseBody>, description = "An optional comment"),
    responses((status = 200, description = "Recorded, or already decided", body = LinkUsed), DbosLinkUse))]
pub async fn use_link(
    State(app): State<AppState>,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let c = verify(&app, &token)?;
    let comment = UseBody::comment(&body, None)?;
    let dbos = source(&app)?;
    let before = sent(&app, &c).await?;
    if before.is_none() {
        let approved = c.decision == "approve";
        let message = json!({"approved": approved, "comment": comment, "approver": c.approver});
        dbos.store
            .send_message(&c.run, &c.topic, &message.to_string(), &message_id(&c))
            .await?;
    }
    // Whichever link of this approver was used first is what the workflow receives.
    let first = sent(&app, &c).await?.unwrap_or(Value::Null);
    let decision = decision_of(&first);
    if before.is_none() && decision == c.decision {
        app.metrics.messages_sent.inc();
        let used = LinkUsed::recorded(decision.into(), message_id(&c).into());
        return Ok(Json(used).into_response());
    }
    let used = LinkUsed::already(decision.into(), text(&first["comment"]), None);
    Ok(Json(used).into_response())
}

/// A text field of a decision message.
fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}
