//! Sending wake-up notes to other processes: every payload on one channel in a single
//! `pg_notify` statement.

use super::Store;
use crate::error::StoreError;

impl Store {
    /// Sends each of `payloads` on `channel`, in one statement.
    pub async fn notify_all(&self, channel: &str, payloads: &[String]) -> Result<(), StoreError> {
        sqlx::query!(
            r#"SELECT pg_notify($1, p) AS "sent: ()" FROM unnest($2::text[]) AS p"#,
            channel,
            payloads
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
