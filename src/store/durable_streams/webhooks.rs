//! The key that signs subscription webhooks (`flowgate.ds_signing_keys`), shared by every
//! process through the database.

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// The oldest signing key: its id and secret.
    pub async fn ds_signing_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query!(
            "SELECT kid, secret FROM flowgate.ds_signing_keys ORDER BY created_at, kid LIMIT 1"
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.kid, r.secret)))
    }

    /// Stores a signing key unless one exists.
    pub async fn ds_add_signing_key(&self, kid: &str, secret: &[u8]) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO flowgate.ds_signing_keys (kid, secret)
             SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM flowgate.ds_signing_keys)",
            kid,
            secret
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
