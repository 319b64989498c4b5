//! `flowgate dbos install-trigger` (optional, off by default): a trigger on DBOS's
//! `workflow_status` that notifies `flowgate_dbos_status` with the workflow id when a
//! status changes, so flowgate need not re-read the status of watched runs.
//!
//! Off by default because it adds a NOTIFY to DBOS's own status transactions (NOTIFY takes
//! a global lock through commit, see DESIGN.md) and DDL to DBOS's schema. It can never
//! fail DBOS's update: an over-long id or any error inside the trigger is ignored.

use sqlx::PgPool;

use super::schema::{valid_name, SchemaError};

/// The channel the trigger notifies (payload: the workflow id).
pub const STATUS_CHANNEL: &str = "flowgate_dbos_status";

/// The trigger's name on `workflow_status`.
pub const TRIGGER: &str = "flowgate_status_trigger";

/// Installs (or replaces) the trigger in schema `schema`.
pub async fn install(pool: &PgPool, schema: &str) -> Result<(), SchemaError> {
    if !valid_name(schema) {
        return Err(SchemaError::BadName(schema.to_string()));
    }
    let sql = format!(
        r#"CREATE OR REPLACE FUNCTION "{schema}".flowgate_status_notify() RETURNS trigger AS $$
BEGIN
    IF octet_length(NEW.workflow_uuid) < 7900 THEN
        BEGIN
            PERFORM pg_notify('{STATUS_CHANNEL}', NEW.workflow_uuid);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp;
DROP TRIGGER IF EXISTS {TRIGGER} ON "{schema}".workflow_status;
CREATE TRIGGER {TRIGGER} AFTER UPDATE OF status ON "{schema}".workflow_status
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION "{schema}".flowgate_status_notify();"#
    );
    sqlx::raw_sql(&sql)
        .execute(pool)
        .await
        .map_err(|e| SchemaError::Db(super::redacted(&e)))?;
    Ok(())
}

/// Removes the trigger and its function.
pub async fn remove(pool: &PgPool, schema: &str) -> Result<(), SchemaError> {
    if !valid_name(schema) {
        return Err(SchemaError::BadName(schema.to_string()));
    }
    let sql = format!(
        r#"DROP TRIGGER IF EXISTS {TRIGGER} ON "{schema}".workflow_status;
DROP FUNCTION IF EXISTS "{schema}".flowgate_status_notify();"#
    );
    sqlx::raw_sql(&sql)
        .execute(pool)
        .await
        .map_err(|e| SchemaError::Db(super::redacted(&e)))?;
    Ok(())
}
