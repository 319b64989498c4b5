//! Messages: stored until a workflow consumes them; an idempotency key makes a resend a no-op.

use serde_json::Value;

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
        let row = sqlx::query!(
            r#"SELECT message_id AS "message_id!", duplicate AS "duplicate!"
               FROM flowgate.send_quiet($1, $2, $3, $4)"#,
            run.as_str(),
            topic.as_str(),
            body,
            idempotency_key
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.message_id, row.duplicate))
    }
}
