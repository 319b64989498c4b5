//! Approval uses: the first decision taken through an approver's approval links (one row
//! per link pair, keyed by its nonce), sent to the run as a message exactly once.

use serde_json::Value;

use super::Store;
use crate::error::StoreError;

/// The first use of an approver's links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalUse {
    /// `approve` or `reject`.
    pub decision: String,
    /// The comment sent with it.
    pub comment: Option<String>,
    /// When, as Postgres prints a `timestamptz`.
    pub used_at: String,
}

/// A decision taken through a link.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The link pair's nonce.
    pub nonce: &'a str,
    /// Run id.
    pub run: &'a str,
    /// Topic the decision is sent on.
    pub topic: &'a str,
    /// Who decided.
    pub approver: &'a str,
    /// `approve` or `reject`.
    pub decision: &'a str,
    /// The comment (empty for none).
    pub comment: &'a str,
    /// The message body sent to the run.
    pub message: &'a Value,
}

impl Store {
    /// The first use of the links with this nonce, if any.
    pub async fn approval_use(&self, nonce: &str) -> Result<Option<ApprovalUse>, StoreError> {
        Ok(sqlx::query_as!(
            ApprovalUse,
            r#"SELECT decision, comment, used_at::text AS "used_at!"
               FROM flowgate.approval_uses WHERE nonce = $1"#,
            nonce
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records `d` as the first use of its nonce and, in the same transaction, sends its
    /// message (idempotency key `approval:<nonce>`, without notifying); returns the message
    /// id, or `None` (nothing written) if the nonce was already used.
    pub async fn record_decision(&self, d: &Decision<'_>) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar!(
            "INSERT INTO flowgate.approval_uses (nonce, workflow_id, topic, approver, decision, comment)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            d.nonce,
            d.run,
            d.topic,
            d.approver,
            d.decision,
            d.comment
        )
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            return Ok(None);
        }
        let key = format!("approval:{}", d.nonce);
        let (message_id, _) =
            super::messages::send_in(&mut tx, d.run, d.topic, d.message, Some(&key)).await?;
        sqlx::query!(
            "UPDATE flowgate.approval_uses SET message_id = $2 WHERE nonce = $1",
            d.nonce,
            message_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(message_id))
    }
}
