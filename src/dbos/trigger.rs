//! `flowgate dbos install-trigger` (optional, off by default): a trigger on DBOS's
//! `workflow_status` that notifies `flowgate_dbos_status` with the workflow id when a
//! status changes, so flowgate need not re-read the status of watched runs.
//!
//! Off by default because it adds a NOTIFY to DBOS's own status transactions (NOTIFY takes
//! a global lock through commit, see DESIGN.md) and DDL to DBOS's schema. It can never
//! fail DBOS's update: an over-long id or any error inside the trigger is ignored.

use sqlx::PgPool;

use super::schema::{db, valid_name, SchemaError};
use crate::store::dbos::trigger as store_trigger;
pub use crate::store::dbos::trigger::{STATUS_CHANNEL, TRIGGER};

/// Installs (or replaces) the trigger in schema `schema`.
pub async fn install(pool: &PgPool, schema: &str) -> Result<(), SchemaError> {
    if !valid_name(schema) {
        return Err(SchemaError::BadName(schema.to_string()));
    }
    store_trigger::install(pool, schema).await.map_err(db)
}

/// Removes the trigger and its function.
pub async fn remove(pool: &PgPool, schema: &str) -> Result<(), SchemaError> {
    if !valid_name(schema) {
        return Err(SchemaError::BadName(schema.to_string()));
    }
    store_trigger::remove(pool, schema).await.map_err(db)
}
