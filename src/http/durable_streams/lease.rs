//! Wake leases and fencing: a webhook consumer's callback, and a pull-wake worker's claim,
//! ack and release. Every call names the wake (id and generation) and carries its bearer
//! token; anything but the open wake's is answered 409 `FENCED`. Acknowledged offsets only
//! move forward, and finishing a wake with work left opens the next one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use sqlx::PgConnection;

use super::fail;
use super::wake;
use crate::error::{ApiError, StoreError};
use crate::http::AppState;
use crate::store::durable_streams::{leases, subscriptions, Subscription};

fn fenced() -> ApiError {
    fail(
        StatusCode::CONFLICT,
        "FENCED",
        "this wake is no longer current",
    )
}

/// Locks subscription `id` (404 if there is none).
pub(crate) async fn lock(conn: &mut PgConnection, id: &str) -> Result<Subscription, ApiError> {
    subscriptions::lock(conn, id)
        .await?
        .ok_or_else(super::subs::not_found)
}

/// Locks subscription `id` if `token`, `wake_id` and `generation` are its open wake's
/// (else 409 `FENCED`).
async fn lock_open_wake(
    conn: &mut PgConnection,
    id: &str,
    token: &str,
    wake_id: &str,
    generation: i64,
) -> Result<Subscription, ApiError> {
    let sub = lock(conn, id).await?;
    if sub.token.as_deref() != Some(token)
        || sub.wake_id.as_deref() != Some(wake_id)
        || sub.generation != generation
    {
        return Err(fenced());
    }
    Ok(sub)
}

/// Applies acknowledgements for the open wake; with `done` the wake ends, and if work is
/// left a new wake opens and is returned (the caller delivers it).
pub async fn ack(
    app: &AppState,
    id: &str,
    token: &str,
    wake_id: &str,
    generation: i64,
    acks: &[(String, i64)],
    done: bool,
) -> Result<Option<Subscription>, ApiError> {
    let mut tx = app.store.pool.begin().await.map_err(StoreError::from)?;
    let sub = lock_open_wake(&mut tx, id, token, wake_id, generation).await?;
    for (path, n) in acks {
        leases::ack(&mut tx, id, path, *n).await?;
    }
    if !done {
        leases::extend(&mut tx, id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(None);
    }
    leases::end_wake(&mut tx, id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let (_, unacked) = wake::snapshot(&app.store, id).await?;
    if !(sub.pending || unacked) {
        return Ok(None);
    }
    let mut tx = app.store.pool.begin().await.map_err(StoreError::from)?;
    let cur = lock(&mut tx, id).await?;
    if cur.wake_id.is_some() {
        return Ok(None);
    }
    let opened = wake::open_wake(&mut tx, id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(opened))
}

/// A worker claims the open (or a new) wake of a pull-wake subscription: 200 with the
/// wake, 409 `ALREADY_CLAIMED` while another worker holds it, 204 when there is no work.
pub async fn claim(app: &AppState, id: &str, body: &Value) -> Result<Response, ApiError> {
    let worker = body["worker"]
        .as_str()
        .filter(|w| !w.is_empty() && w.len() <= 256);
    let worker =
        worker.ok_or_else(|| ApiError::invalid("worker", "a non-empty worker name is required"))?;
    let mut tx = app.store.pool.begin().await.map_err(StoreError::from)?;
    let sub = lock(&mut tx, id).await?;
    if sub.kind != "pull-wake" {
        return Err(ApiError::invalid(
            "type",
            "only pull-wake subscriptions are claimed",
        ));
    }
    if let (Some(holder), true) = (&sub.holder, sub.leased) {
        let body = json!({ "error": { "code": "ALREADY_CLAIMED", "message": "another worker holds this wake",
                                      "current_holder": holder } });
        return Ok((StatusCode::CONFLICT, Json(body)).into_response());
    }
    let (_, unacked) = wake::snapshot(&app.store, id).await?;
    if sub.wake_id.is_none() && !unacked && !sub.pending {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let sub = if sub.wake_id.is_none() {
        wake::open_wake(&mut tx, id).await?
    } else {
        sub
    };
    let token = uuid::Uuid::new_v4().simple().to_string();
    leases::claim(&mut tx, id, worker, &token).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let (streams, _) = wake::snapshot(&app.store, id).await?;
    Ok(Json(json!({
        "wake_id": sub.wake_id, "generation": sub.generation, "token": token,
        "lease_ttl_ms": sub.lease_ttl_ms, "streams": streams,
    }))
    .into_response())
}

/// A worker gives its claim back; the wake stays open for another worker.
pub async fn release(
    app: &AppState,
    id: &str,
    token: &str,
    wake_id: &str,
    generation: i64,
) -> Result<Response, ApiError> {
    let mut tx = app.store.pool.begin().await.map_err(StoreError::from)?;
    lock_open_wake(&mut tx, id, token, wake_id, generation).await?;
    leases::release(&mut tx, id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
