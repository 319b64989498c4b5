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
use super::wake::{self, SubRow, SUB_COLUMNS};
use super::webhook;
use super::{fail, header};
use crate::error::ApiError;
use crate::http::AppState;
use crate::ids::RunId;

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
    kind: String,
    pattern: Option<String>,
    streams: Option<Vec<String>>,
    webhook: Option<Webhook>,
    wake_stream: Option<String>,
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
        ("DELETE", "") => {
            let sql = "DELETE FROM flowgate.ds_subscriptions WHERE id = $1";
            delete(app, sqlx::query(sql).bind(id)).await
        }
        ("POST", "streams") => {
            let links: LinkBody = json_body(&body)?;
            require(app, id).await?;
            link(app, id, &links.streams).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("DELETE", t) if t.starts_with("streams/") => {
            let sql = "DELETE FROM flowgate.ds_sub_streams WHERE sub_id = $1 AND path = $2";
            delete(app, sqlx::query(sql).bind(id).bind(&t["streams/".len()..])).await
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

/// Runs a `DELETE`: 204, or 404 if it removed nothing.
async fn delete(
    app: &AppState,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<Response, ApiError> {
    let n = query
        .execute(&app.store.pool)
        .await
        .map_err(crate::error::StoreError::from)?
        .rows_affected();
    if n == 0 {
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
    let found: Option<(String,)> =
        sqlx::query_as("SELECT id FROM flowgate.ds_subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(&app.store.pool)
            .await
            .map_err(crate::error::StoreError::from)?;
    found.map(|_| ()).ok_or_else(not_found)
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
    sqlx::query(
        "INSERT INTO flowgate.ds_sub_streams (sub_id, path, link_type)
         SELECT $1, p, 'explicit' FROM unnest($2::text[]) AS p
         ON CONFLICT (sub_id, path) DO UPDATE SET link_type = 'explicit'",
    )
    .bind(id)
    .bind(streams)
    .execute(&app.store.pool)
    .await
    .map_err(crate::error::StoreError::from)?;
    Ok(())
}

async fn put(app: &AppState, id: &str, h: &HeaderMap, b: &SubBody) -> Result<Response, ApiError> {
    let (lease, url) = check(app, b).await?;
    let base = format!("http://{}", header(h, "host").unwrap_or("localhost"));
    let created = sqlx::query(
        "INSERT INTO flowgate.ds_subscriptions
           (id, kind, pattern, webhook_url, wake_stream, lease_ttl_ms, description, base_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(&b.kind)
    .bind(&b.pattern)
    .bind(&url)
    .bind(&b.wake_stream)
    .bind(lease)
    .bind(&b.description)
    .bind(&base)
    .execute(&app.store.pool)
    .await
    .map_err(crate::error::StoreError::from)?
    .rows_affected()
        == 1;
    if !created && !same_as_stored(app, id, b, lease, &url).await? {
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

/// True if subscription `id` exists with exactly this configuration.
async fn same_as_stored(
    app: &AppState,
    id: &str,
    b: &SubBody,
    lease: i64,
    url: &Option<String>,
) -> Result<bool, ApiError> {
    let same: Option<(bool,)> = sqlx::query_as(
        "SELECT kind = $2 AND pattern IS NOT DISTINCT FROM $3 AND webhook_url IS NOT DISTINCT FROM $4
                AND wake_stream IS NOT DISTINCT FROM $5 AND lease_ttl_ms = $6
                AND description IS NOT DISTINCT FROM $7
         FROM flowgate.ds_subscriptions WHERE id = $1",
    )
    .bind(id)
    .bind(&b.kind)
    .bind(&b.pattern)
    .bind(url)
    .bind(&b.wake_stream)
    .bind(lease)
    .bind(&b.description)
    .fetch_optional(&app.store.pool)
    .await
    .map_err(crate::error::StoreError::from)?;
    Ok(same == Some((true,)))
}

async fn get(app: &AppState, id: &str) -> Result<Response, ApiError> {
    let sql = format!("SELECT {SUB_COLUMNS} FROM flowgate.ds_subscriptions WHERE id = $1");
    let sub: SubRow = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&app.store.pool)
        .await
        .map_err(crate::error::StoreError::from)?
        .ok_or_else(not_found)?;
    let (streams, _) = wake::snapshot(&app.store.pool, id).await?;
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
