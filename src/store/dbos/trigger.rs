//! The optional status trigger on DBOS's `workflow_status` (`flowgate dbos install-trigger`):
//! it notifies [`STATUS_CHANNEL`] with the workflow id when a status changes, and can never
//! fail DBOS's update (an over-long id or any error inside it is ignored).
//!
//! Both statements are DDL built at run time: the schema is configured
//! (FLOWGATE_DBOS_SCHEMA), and neither a schema name nor DDL takes bound parameters. Callers
//! pass a schema they have checked is a plain identifier.

use sqlx::PgPool;

use crate::error::StoreError;

/// The channel the trigger notifies (payload: the workflow id).
pub const STATUS_CHANNEL: &str = "flowgate_dbos_status";

/// The trigger's name on `workflow_status`.
pub const TRIGGER: &str = "flowgate_status_trigger";

/// Installs (or replaces) the trigger and its function in schema `schema`.
pub async fn install(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
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
    // DDL over the configured schema name: built at run time (nothing in it can be bound).
    sqlx::raw_sql(&sql).execute(pool).await?;
    Ok(())
}

/// Removes the trigger and its function from schema `schema`.
pub async fn remove(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let sql = format!(
        r#"DROP TRIGGER IF EXISTS {TRIGGER} ON "{schema}".workflow_status;
DROP FUNCTION IF EXISTS "{schema}".flowgate_status_notify();"#
    );
    // DDL over the configured schema name: built at run time (nothing in it can be bound).
    sqlx::raw_sql(&sql).execute(pool).await?;
    Ok(())
}
