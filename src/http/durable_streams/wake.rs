//! Wakes of subscriptions: stream activity starts a wake (generation + 1, fresh token) for
//! each subscription that follows the stream; a webhook subscription gets a signed POST, a
//! pull-wake subscription an event on its wake stream. Activity during an open wake only
//! marks the subscription pending, so a consumer sees one wake at a time.
//!
//! Signing and the webhook address policy are in [`super::webhook`].

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::offsets;
use super::webhook::{check_url, glob, signature, signing_key};
use super::write::Append;
use crate::error::StoreError;
use crate::http::AppState;
use crate::store::durable_streams::{subscriptions, Subscription};
use crate::store::Store;

/// Largest webhook answer read, in bytes.
const MAX_ANSWER: usize = 64 << 10;

/// The streams of a subscription with their tails: `{path, tail_offset, acked_offset,
/// has_pending, link_type}`; and whether any has unacknowledged data.
pub async fn snapshot(store: &Store, sub: &str) -> Result<(Vec<Value>, bool), StoreError> {
    let rows = store.ds_sub_streams(sub).await?;
    let mut any = false;
    let streams = rows
        .into_iter()
        .map(|l| {
            let (tail, acked) = (l.tail.unwrap_or(0), l.acked);
            any |= tail > acked;
            json!({
                "path": l.path, "link_type": l.link_type,
                "tail_offset": offsets::format(tail), "acked_offset": offsets::format(acked),
                "has_pending": tail > acked,
            })
        })
        .collect();
    Ok((streams, any))
}

/// Opens a new wake (fresh wake id and token) on a locked, idle subscription; returns its
/// row.
pub async fn open_wake(conn: &mut PgConnection, id: &str) -> Result<Subscription, StoreError> {
    let wake_id = uuid::Uuid::new_v4().simple().to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    subscriptions::open_wake(conn, id, &wake_id, &token).await
}

/// Records activity on `path` for every subscription following it, opening wakes where
/// none is open. Runs after the write committed; errors are logged.
pub async fn activity(app: AppState, path: String) {
    if path.starts_with("__ds/") {
        return;
    }
    if let Err(e) = activity_inner(&app, &path).await {
        tracing::warn!(error = %e, path, "subscription wake failed");
    }
}

async fn activity_inner(app: &AppState, path: &str) -> Result<(), StoreError> {
    for m in app.store.ds_sub_matches(path).await? {
        let matched = m.pattern.as_deref().is_some_and(|p| glob(p, path));
        if !matched && !m.linked {
            continue;
        }
        let id = m.id;
        let mut tx = app.store.pool.begin().await?;
        let Some(sub) = subscriptions::lock(&mut tx, &id).await? else {
            continue;
        };
        if matched {
            subscriptions::link_pattern(&mut tx, &id, path).await?;
        }
        if sub.wake_id.is_some() && (sub.leased || sub.holder.is_none() && sub.kind == "pull-wake")
        {
            subscriptions::mark_pending(&mut tx, &id).await?;
            tx.commit().await?;
            continue;
        }
        let sub = open_wake(&mut tx, &id).await?;
        tx.commit().await?;
        deliver(app, sub).await?;
    }
    Ok(())
}

/// Announces an opened wake: a signed webhook POST, or an event on the wake stream.
pub async fn deliver(app: &AppState, sub: Subscription) -> Result<(), StoreError> {
    let (streams, _) = snapshot(&app.store, &sub.id).await?;
    let wake_id = sub.wake_id.clone().unwrap_or_default();
    if sub.kind == "pull-wake" {
        let event = json!({
            "subscription_id": sub.id, "wake_id": wake_id, "generation": sub.generation,
            "streams": streams,
        });
        let Some(path) = sub.wake_stream.clone() else {
            return Ok(());
        };
        let req = Append {
            path,
            content_type: Some("application/json".into()),
            body: event.to_string().into(),
            close: false,
            seq: None,
            producer: None,
        };
        // Readers of the wake stream are woken by the commit.
        req.run(app.notifier.group()).await?;
        return Ok(());
    }
    let app = app.clone();
    tokio::spawn(async move {
        let (mut sub, mut wake_id, mut streams) = (sub, wake_id, streams);
        // A webhook that answers `done` may leave work for a next wake: deliver it too.
        loop {
            match post_webhook(&app, &sub, &wake_id, streams).await {
                Ok(Some(next)) => {
                    wake_id = next.wake_id.clone().unwrap_or_default();
                    streams = match snapshot(&app.store, &next.id).await {
                        Ok((s, _)) => s,
                        Err(_) => break,
                    };
                    sub = next;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, subscription = sub.id, "webhook delivery failed");
                    break;
                }
            }
        }
    });
    Ok(())
}

/// Posts one wake; returns the next wake if the consumer finished and work is left.
async fn post_webhook(
    app: &AppState,
    sub: &Subscription,
    wake_id: &str,
    streams: Vec<Value>,
) -> Result<Option<Subscription>, String> {
    let url = sub.webhook_url.clone().unwrap_or_default();
    let url = check_url(&url, app.config.ds_webhook_loopback).await?;
    let body = json!({
        "subscription_id": sub.id, "wake_id": wake_id, "generation": sub.generation,
        "callback_url": format!("{}/v1/stream/__ds/subscriptions/{}/callback", sub.base_url, sub.id),
        "callback_token": sub.token, "streams": streams.clone(),
    })
    .to_string();
    let (kid, key) = signing_key(&app.store).await.map_err(|e| e.to_string())?;
    let sig = signature(&kid, &key, super::read::unix_now(), body.as_bytes());
    // No redirects: a redirect could lead to an address the policy rejects.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    // Only a small answer is read (`{"done": true}` or nothing).
    let mut raw = Vec::new();
    let mut chunks = resp.bytes_stream();
    while let Some(Ok(c)) = chunks.next().await {
        if raw.len() + c.len() > MAX_ANSWER {
            break;
        }
        raw.extend_from_slice(&c);
    }
    let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if answer.get("done") == Some(&Value::Bool(true)) {
        let acks: Vec<(String, i64)> = streams
            .iter()
            .filter_map(|s| {
                let path = s["path"].as_str()?.to_string();
                match offsets::parse(s["tail_offset"].as_str()?)? {
                    offsets::Start::At(n) => Some((path, n)),
                    offsets::Start::Now => None,
                }
            })
            .collect();
        let token = sub.token.clone().unwrap_or_default();
        return super::lease::ack(app, &sub.id, &token, wake_id, sub.generation, &acks, true)
            .await
            .map_err(|e| e.message);
    }
    Ok(None)
}
