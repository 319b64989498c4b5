//! The start-up check of a DBOS system schema: it must exist, be a version whose tables we
//! read (DBOS Transact Python 3.x / TypeScript 5.x), and not be sharded.

use sqlx::PgPool;

use crate::error::StoreError;
use crate::store::dbos::schema as dbos_schema;

/// Oldest `dbos_migrations.version` served: the one that moved outputs to `workflow_output`.
pub const MIN_VERSION: i64 = 109;

/// Newest version checked against (dbos 3.4.0). Newer ones are served with a warning.
pub const KNOWN_VERSION: i64 = 125;

/// Columns every read relies on, as (table, column).
const REQUIRED: [(&str, &str); 12] = [
    ("workflow_status", "workflow_uuid"),
    ("workflow_status", "serialization"),
    ("workflow_output", "output"),
    ("workflow_events", "serialization"),
    ("workflow_events_history", "function_id"),
    ("streams", "offset"),
    ("streams", "serialization"),
    ("streams", "function_id"),
    ("notifications", "message_uuid"),
    ("notifications", "consumed"),
    ("notifications", "serialization"),
    ("dbos_migrations", "version"),
];

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaInfo {
    /// `dbos_migrations.version`.
    pub version: i64,
    /// True if the DBOS app created its notify triggers (`use_listen_notify`, the default).
    pub listen_notify: bool,
    /// True if `dbos.enqueue_workflow` exists.
    pub has_enqueue: bool,
    /// True if `flowgate dbos install-trigger` installed the status trigger.
    pub status_trigger: bool,
}

/// Why a DBOS schema is refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema name is not a plain identifier.
    #[error("FLOWGATE_DBOS_SCHEMA must be a plain identifier (letters, digits, _), not {0:?}")]
    BadName(String),
    /// No DBOS schema there.
    #[error("no DBOS system schema {0:?} in FLOWGATE_DBOS_URL's database (launch the DBOS app once first, or set FLOWGATE_DBOS_SCHEMA)")]
    Missing(String),
    /// Too old.
    #[error("DBOS schema version {0} is older than supported (at least {MIN_VERSION}: DBOS Transact Python 3.x or TypeScript 5.x)")]
    TooOld(i64),
    /// Sharded system databases route rows by shard key; not supported.
    #[error("the DBOS system schema is sharded (workflow_status.shard_key); sharded DBOS databases are not supported")]
    Sharded,
    /// A column we read is missing.
    #[error("the DBOS schema lacks {0}; this DBOS version is not supported")]
    Lacks(String),
    /// The database could not be read (the message never includes the connection URL).
    #[error("cannot read the DBOS schema: {0}")]
    Db(String),
}

/// True for a plain SQL identifier.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// A store error as a schema error, its message free of the connection URL.
pub(super) fn db(e: StoreError) -> SchemaError {
    match e {
        StoreError::Db(e) => SchemaError::Db(super::redacted(&e)),
        other => SchemaError::Db(other.to_string()),
    }
}

/// Checks schema `schema` and reports what it supports.
pub async fn check(pool: &PgPool, schema: &str) -> Result<SchemaInfo, SchemaError> {
    if !valid_name(schema) {
        return Err(SchemaError::BadName(schema.to_string()));
    }
    let cols = dbos_schema::columns(pool, schema).await.map_err(db)?;
    let has = |t: &str, c: &str| cols.iter().any(|(tt, cc)| tt == t && cc == c);
    if !has("dbos_migrations", "version") {
        return Err(SchemaError::Missing(schema.to_string()));
    }
    let version = dbos_schema::max_version(pool, schema)
        .await
        .map_err(db)?
        .unwrap_or(0);
    if version < MIN_VERSION {
        return Err(SchemaError::TooOld(version));
    }
    if has("workflow_status", "shard_key") || has("streams", "shard_key") {
        return Err(SchemaError::Sharded);
    }
    if let Some((t, c)) = REQUIRED.iter().find(|(t, c)| !has(t, c)) {
        return Err(SchemaError::Lacks(format!("{t}.{c}")));
    }
    if version > KNOWN_VERSION {
        tracing::warn!(
            version,
            known = KNOWN_VERSION,
            "DBOS schema is newer than the version flowgate was checked against"
        );
    }
    let f = dbos_schema::features(pool, schema).await.map_err(db)?;
    Ok(SchemaInfo {
        version,
        listen_notify: f.listen_notify,
        has_enqueue: f.has_enqueue,
        status_trigger: f.status_trigger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("dbos"));
        assert!(valid_name("_my_schema2"));
        assert!(!valid_name(""));
        assert!(!valid_name("2dbos"));
        assert!(!valid_name("dbos\"; drop"));
        assert!(!valid_name(&"a".repeat(64)));
    }
}
