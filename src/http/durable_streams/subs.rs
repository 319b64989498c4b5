//! The reserved subscription API under `/v1/stream/__ds/`: `jwks.json`, and
//! `subscriptions/{id}` with PUT (create or confirm), GET, DELETE, `streams` (link or unlink
//! streams explicitly), `callback` (a webhook consumer acknowledges its wake), and for
//! pull-wake subscriptions `claim`, `ack` and `release` (a worker leases the open wake).
//!
//! Every callback is fenced: the bearer token, wake id and generation must be the open
//! wake's, else 409 `FENCED`. Acknowledged offsets only move forward.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::lease;
use super::offsets::{self, Start};
use super::wake;
use super::webhook;
use super::{fail, header};
use crate::error::ApiError;
use crate::http::AppState;
use crate::ids::RunId;
use crate::store::durable_streams::SubConfig;

/// Longest lease a subscription may ask for, in milliseconds.
const MAX_LEASE_MS: i64 = 3_600_000;

/// Most explicit streams in one request.
const MAX_LINKS: usize = 1000;

/// Where wakes are sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Webhook {
    url: String,
}

/// A subscription's configuration.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubBody {
    #[serde(rename = "type")]
    #[schema(value_type = crate::http::openapi::schema::SubKind)]
    kind: String,
    pattern: Option<String>,
    streams: Option<Vec<String>>,
    webhook: Option<Webhook>,
    wake_stream: Option<String>,
    #[schema(minimum = 100, maximum = 3_600_000)]
    lease_ttl_ms: Option<i64>,
    description: Option<String>,
}

/// An acknowledgement, or a release, of a wake.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AckBody {
    wake_id: String,
    generation: i64,
    #[serde(default)]
    acks: Vec<AckItem>,
    #[serde(default)]
    done: bool,
}

/// How far one stream was processed.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AckItem {
    stream: String,
    offset: String,
}

/// Streams to link.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LinkBody {
    streams: Vec<String>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", e))
}

pub(crate) fn bearer(h: &HeaderMap) -> String {
    header(h, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// 404 for an unknown subscription.
pub(crate) fn not_found() -> ApiError {
    fail(StatusCode::NOT_FOUND, "NOT_FOUND", "no such subscription")
}

/// Routes `__ds/{rest}`.
pub async fn handle(
    app: &AppState,
    method: &Method,
    rest: &str,
    h: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if rest == "jwks.json" && method == Method::GET {
        let (kid, key) = webhook::signing_key(&app.store).await?;
        let mut r = Json(webhook::jwks(&kid, &key)).into_response();
        super::http::set(&mut r, "content-type", "application/jwk-set+json");
        return Ok(r);
    }
    let Some(rest) = rest.strip_prefix("subscriptions/") else {
        return Err(fail(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint"));
    };
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    RunId::parse(id).map_err(|e| ApiError::invalid("id", e))?;
    match (method.as_str(), tail) {
        ("PUT", "") => put(app, id, h, &json_body(&body)?).await,
        ("GET", "") => get(app, id).await,
        ("DELETE", "") => deleted(app.store.ds_remove_subscription(id).await?),
        ("POST", "streams") => {
            let links: LinkBody = json_body(&body)?;
            require(app, id).await?;
            link(app, id, &links.streams).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("DELETE", t) if t.starts_with("streams/") => {
            deleted(app.store.ds_unlink(id, &t["streams/".len()..]).await?)
        }
        ("POST", "callback") | ("POST", "ack") => ack(app, id, h, &json_body(&body)?).await,
        ("POST", "claim") => lease::claim(app, id, &json_body::<Value>(&body)?).await,
        ("POST", "release") => {
            let b: AckBody = json_body(&body)?;
            lease::release(app, id, &bearer(h), &b.wake_id, b.generation).await
        }
        _ => Err(fail(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "not allowed on this subscription resource",
        )),
    }
}

/// A `DELETE`'s answer: 204, or 404 if it removed nothing.
fn deleted(removed: bool) -> Result<Response, ApiError> {
    if !removed {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A callback or ack: moves the acknowledged offsets forward (fenced by the wake's token,
/// id and generation), and delivers the next wake if there is more to do.
async fn ack(app: &AppState, id: &str, h: &HeaderMap, b: &AckBody) -> Result<Response, ApiError> {
    let mut acks = Vec::new();
    for a in &b.acks {
        match offsets::parse(&a.offset) {
            Some(Start::At(n)) => acks.push((a.stream.clone(), n)),
            _ => return Err(ApiError::invalid("acks", "malformed offset")),
        }
    }
    let next = lease::ack(app, id, &bearer(h), &b.wake_id, b.generation, &acks, b.done).await?;
    let more = next.is_some();
    if let Some(sub) = next {
        wake::deliver(app, sub).await?;
    }
    Ok(Json(json!({ "ok": true, "next_wake": more })).into_response())
}

async fn require(app: &AppState, id: &str) -> Result<(), ApiError> {
    if !app.store.ds_subscription_exists(id).await? {
        return Err(not_found());
    }
    Ok(())
}

async fn link(app: &AppState, id: &str, streams: &[String]) -> Result<(), ApiError> {
    if streams.len() > MAX_LINKS
        || streams
            .iter()
            .any(|s| s.is_empty() || s.len() > super::MAX_PATH)
    {
        return Err(ApiError::invalid(
            "streams",
            format!("at most {MAX_LINKS} non-empty paths"),
        ));
    }
    app.store.ds_link(id, streams).await?;
    Ok(())
}

async fn put(app: &AppState, id: &str, h: &HeaderMap, b: &SubBody) -> Result<Response, ApiError> {
    let (lease, url) = check(app, b).await?;
    let base = format!("http://{}", header(h, "host").unwrap_or("localhost"));
    let config = SubConfig {
        kind: &b.kind,
        pattern: b.pattern.as_deref(),
        webhook_url: url.as_deref(),
        wake_stream: b.wake_stream.as_deref(),
        lease_ttl_ms: lease,
        description: b.description.as_deref(),
    };
    let created = app.store.ds_add_subscription(id, &config, &base).await?;
    if !created && !app.store.ds_subscription_is(id, &config).await? {
        return Err(fail(
            StatusCode::CONFLICT,
            "CONFLICT",
            "a different subscription has this id",
        ));
    }
    if let Some(streams) = &b.streams {
        link(app, id, streams).await?;
    }
    let mut r = get(app, id).await?;
    if created {
        *r.status_mut() = StatusCode::CREATED;
    }
    Ok(r)
}

/// Checks a subscription's configuration: its lease in milliseconds, and its webhook URL
/// (allowed by the URL policy) if it is a webhook subscription.
async fn check(app: &AppState, b: &SubBody) -> Result<(i64, Option<String>), ApiError> {
    let lease = b.lease_ttl_ms.unwrap_or(30_000);
    if !(100..=MAX_LEASE_MS).contains(&lease) {
        return Err(ApiError::invalid(
            "lease_ttl_ms",
            format!("must be 100..={MAX_LEASE_MS}"),
        ));
    }
    if b.pattern.is_none() && b.streams.is_none() {
        return Err(ApiError::invalid(
            "pattern",
            "a pattern or a list of streams is required",
        ));
    }
    match (b.kind.as_str(), &b.webhook, &b.wake_stream) {
        ("webhook", Some(w), _) => {
            webhook::check_url(&w.url, app.config.ds_webhook_loopback)
                .await
                .map_err(|m| {
                    fail(StatusCode::BAD_REQUEST, "WEBHOOK_URL_REJECTED", m)
                        .with_field("webhook.url")
                })?;
            Ok((lease, Some(w.url.clone())))
        }
        ("pull-wake", _, Some(_)) => Ok((lease, None)),
        _ => Err(ApiError::invalid(
            "type",
            "webhook (with webhook.url) or pull-wake (with wake_stream)",
        )),
    }
}

async fn get(app: &AppState, id: &str) -> Result<Response, ApiError> {
    let sub = app.store.ds_subscription(id).await?.ok_or_else(not_found)?;
    let (streams, _) = wake::snapshot(&app.store, id).await?;
    let mut out = json!({
        "id": sub.id, "type": sub.kind, "pattern": sub.pattern, "lease_ttl_ms": sub.lease_ttl_ms,
        "generation": sub.generation, "streams": streams,
    });
    if let Some(url) = &sub.webhook_url {
        let (kid, _) = webhook::signing_key(&app.store).await?;
        out["webhook"] = json!({ "url": url, "signing": {
            "alg": "ed25519", "kid": kid,
            "jwks_url": format!("{}/v1/stream/__ds/jwks.json", sub.base_url),
        }});
    }
    if let Some(ws) = &sub.wake_stream {
        out["wake_stream"] = json!(ws);
    }
    Ok(Json(out).into_response())
}
