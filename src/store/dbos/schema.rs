//! The reads behind the start-up check of a DBOS system schema (`crate::dbos::schema`):
//! which columns it has, its migration version, and which triggers and functions exist.
//!
//! They run before a [`super::DbosStore`] exists, on the DBOS database's pool, for a schema
//! name the caller has checked is a plain identifier.

use sqlx::PgPool;

use super::trigger::TRIGGER;
use crate::error::StoreError;

/// What a DBOS schema has besides its tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaFeatures {
    /// The DBOS app created its notify trigger (`dbos_notifications_trigger`).
    pub listen_notify: bool,
    /// flowgate's status trigger ([`TRIGGER`]) is installed.
    pub status_trigger: bool,
    /// `enqueue_workflow` exists.
    pub has_enqueue: bool,
}

/// Every (table, column) of schema `schema`.
pub async fn columns(pool: &PgPool, schema: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT table_name::text AS "table!", column_name::text AS "column!"
           FROM information_schema.columns
           WHERE table_schema = $1"#,
        schema
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.table, r.column)).collect())
}

/// The highest `dbos_migrations.version` of schema `schema` (a plain identifier), `None`
/// if the table is empty.
pub async fn max_version(pool: &PgPool, schema: &str) -> Result<Option<i64>, StoreError> {
    // Built at run time: the schema name is configuration, and a name cannot be bound.
    Ok(sqlx::query_scalar(&format!(
        "SELECT max(version) FROM \"{schema}\".dbos_migrations"
    ))
    .fetch_one(pool)
    .await?)
}

/// Which notify triggers and functions schema `schema` has.
pub async fn features(pool: &PgPool, schema: &str) -> Result<SchemaFeatures, StoreError> {
    Ok(sqlx::query_as!(
        SchemaFeatures,
        r#"SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                          JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = $1 AND t.tgname = 'dbos_notifications_trigger')
                      AS "listen_notify!",
                  EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                          JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = $1 AND t.tgname = $2) AS "status_trigger!",
                  EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE n.nspname = $1 AND p.proname = 'enqueue_workflow')
                      AS "has_enqueue!""#,
        schema,
        TRIGGER
    )
    .fetch_one(pool)
    .await?)
}
