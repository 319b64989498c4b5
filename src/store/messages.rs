//! Messages: stored until a workflow consumes them; an idempotency key makes a resend a no-op.
//! A workflow's send and its consume run inside its step's recording transaction.

use serde_json::Value;
use sqlx::PgConnection;

use super::Store;
use crate::error::StoreError;
use crate::ids::{RunId, Topic};

impl Store {
    /// Stores a message without notifying; returns `(message_id, duplicate)`.
    pub async fn send(
        &self,
        run: &RunId,
        topic: &Topic,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<(i64, bool), StoreError> {
        let mut conn = self.pool.acquire().await?;
        send_in(
            &mut conn,
            run.as_str(),
            topic.as_str(),
            body,
            idempotency_key,
        )
        .await
    }
}

/// Stores a message without notifying, on `conn` (inside the sender's transaction, for a
/// workflow); returns `(message_id, duplicate)`.
pub async fn send_in(
    conn: &mut PgConnection,
    run: &str,
    topic: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> Result<(i64, bool), StoreError> {
    let row = sqlx::query!(
        r#"SELECT message_id AS "message_id!", duplicate AS "duplicate!"
           FROM flowgate.send_quiet($1, $2, $3, $4)"#,
        run,
        topic,
        body,
        idempotency_key
    )
    .fetch_one(conn)
    .await?;
    Ok((row.message_id, row.duplicate))
}

/// Marks the oldest unconsumed message on `topic` of `run` consumed (skipping one another
/// transaction holds) and returns its body.
pub async fn consume_next(
    conn: &mut PgConnection,
    run: &str,
    topic: &str,
) -> Result<Option<Value>, StoreError> {
    Ok(sqlx::query_scalar!(
        "UPDATE flowgate.messages SET consumed_at = now()
         WHERE id = (SELECT id FROM flowgate.messages
                     WHERE workflow_id = $1 AND topic = $2 AND consumed_at IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING body",
        run,
        topic
    )
    .fetch_optional(conn)
    .await?)
}
