//! Wakes of subscriptions: stream activity starts a wake (generation + 1, fresh token) for
//! each subscription that follows the stream; a webhook subscription gets a signed POST, a
//! pull-wake subscription an event on its wake stream. Activity during an open wake only
//! marks the subscription pending, so a consumer sees one wake at a time.
//!
//! Signing and the webhook address policy are in [`super::webhook`].

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::offsets;
use super::webhook::{check_url, glob, signature, signing_key};
use super::write::Append;
use crate::error::StoreError;
use crate::http::AppState;

/// Largest webhook answer read, in bytes.
const MAX_ANSWER: usize = 64 << 10;

/// A subscription row as the wake logic needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubRow {
    /// Id.
    pub id: String,
    /// `webhook` or `pull-wake`.
    pub kind: String,
    /// Glob pattern.
    pub pattern: Option<String>,
    /// Webhook URL.
    pub webhook_url: Option<String>,
    /// Wake stream path.
    pub wake_stream: Option<String>,
    /// Lease length.
    pub lease_ttl_ms: i64,
    /// Base URL for links.
    pub base_url: String,
    /// Current wake generation.
    pub generation: i64,
    /// Open wake.
    pub wake_id: Option<String>,
    /// Token of the open wake (or claim).
    pub token: Option<String>,
    /// Worker holding a pull-wake claim.
    pub holder: Option<String>,
    /// Lease still valid.
    pub leased: bool,
    /// Activity during the open wake.
    pub pending: bool,
}

/// Columns of [`SubRow`].
pub const SUB_COLUMNS: &str = "id, kind, pattern, webhook_url, wake_stream, lease_ttl_ms, \
    base_url, generation, wake_id, token, holder, coalesce(lease_until > now(), false) AS leased, pending";

/// The streams of a subscription with their tails: `{path, tail_offset, acked_offset,
/// has_pending, link_type}`; and whether any has unacknowledged data.
pub async fn snapshot(db: &sqlx::PgPool, sub: &str) -> Result<(Vec<Value>, bool), StoreError> {
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT l.path, l.link_type, l.acked, s.tail
         FROM flowgate.ds_sub_streams l
         LEFT JOIN flowgate.ds_streams s ON s.path = l.path AND NOT s.deleted
         WHERE l.sub_id = $1 ORDER BY l.path",
    )
    .bind(sub)
    .fetch_all(db)
    .await?;
    let mut any = false;
    let streams = rows
        .into_iter()
        .map(|(path, link, acked, tail)| {
            let tail = tail.unwrap_or(0);
            any |= tail > acked;
            json!({
                "path": path, "link_type": link,
                "tail_offset": offsets::format(tail), "acked_offset": offsets::format(acked),
                "has_pending": tail > acked,
            })
        })
        .collect();
    Ok((streams, any))
}

/// Opens a new wake on a locked, idle subscription; returns its row.
pub async fn open_wake(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: &str,
) -> Result<SubRow, StoreError> {
    let sql = format!(
        "UPDATE flowgate.ds_subscriptions
         SET generation = generation + 1, wake_id = $2, token = $3, holder = NULL,
             lease_until = now() + make_interval(secs => lease_ttl_ms / 1000.0), pending = false
         WHERE id = $1 RETURNING {SUB_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .fetch_one(&mut **tx)
        .await?)
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
    let subs: Vec<(String, Option<String>, bool)> = sqlx::query_as(
        "SELECT s.id, s.pattern, EXISTS (SELECT 1 FROM flowgate.ds_sub_streams l
                                         WHERE l.sub_id = s.id AND l.path = $1)
         FROM flowgate.ds_subscriptions s",
    )
    .bind(path)
    .fetch_all(&app.store.pool)
    .await?;
    for (id, pattern, linked) in subs {
        let matched = pattern.as_deref().is_some_and(|p| glob(p, path));
        if !matched && !linked {
            continue;
        }
        let mut tx = app.store.pool.begin().await?;
        let sql =
            format!("SELECT {SUB_COLUMNS} FROM flowgate.ds_subscriptions WHERE id = $1 FOR UPDATE");
        let Some(sub): Option<SubRow> = sqlx::query_as(&sql)
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            continue;
        };
        if matched {
            sqlx::query(
                "INSERT INTO flowgate.ds_sub_streams (sub_id, path, link_type) VALUES ($1, $2, 'pattern')
                 ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(path)
            .execute(&mut *tx)
            .await?;
        }
        if sub.wake_id.is_some() && (sub.leased || sub.holder.is_none() && sub.kind == "pull-wake")
        {
            sqlx::query("UPDATE flowgate.ds_subscriptions SET pending = true WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
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
pub async fn deliver(app: &AppState, sub: SubRow) -> Result<(), StoreError> {
    let (streams, _) = snapshot(&app.store.pool, &sub.id).await?;
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
                    streams = match snapshot(&app.store.pool, &next.id).await {
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
    sub: &SubRow,
    wake_id: &str,
    streams: Vec<Value>,
) -> Result<Option<SubRow>, String> {
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
