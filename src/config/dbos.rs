//! Settings of the DBOS source.

use clap::Args;

/// Settings of the DBOS source (flattened into `flowgate serve`'s flags). `Debug` never
/// shows the URL (it may hold the DBOS database's password).
#[derive(Clone, Args)]
pub struct DbosSettings {
    /// The DBOS system database (may equal DATABASE_URL). Unset: no DBOS source.
    #[arg(
        id = "dbos_url",
        long = "dbos-url",
        env = "FLOWGATE_DBOS_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// The DBOS system schema (DBOS's `dbos_system_schema` / `systemDatabaseSchemaName`).
    #[arg(
        id = "dbos_schema",
        long = "dbos-schema",
        env = "FLOWGATE_DBOS_SCHEMA",
        default_value = "dbos"
    )]
    pub schema: String,
    /// Milliseconds between status re-reads of watched DBOS runs (only while someone watches).
    #[arg(
        id = "dbos_status_interval",
        long = "dbos-status-interval",
        env = "FLOWGATE_DBOS_STATUS_INTERVAL",
        default_value_t = 200
    )]
    pub status_interval_ms: u64,
    /// Seconds between safety re-checks of DBOS subscriptions. Default: 10, or 1 when the
    /// DBOS app runs without LISTEN/NOTIFY (then this is how late delivery can be).
    #[arg(
        id = "dbos_recheck",
        long = "dbos-recheck",
        env = "FLOWGATE_DBOS_RECHECK"
    )]
    pub recheck: Option<f64>,
}

impl std::fmt::Debug for DbosSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbosSettings")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("schema", &self.schema)
            .field("status_interval_ms", &self.status_interval_ms)
            .field("recheck", &self.recheck)
            .finish()
    }
}

impl Default for DbosSettings {
    /// The flags' defaults, as `flowgate serve` has them with nothing set.
    fn default() -> Self {
        super::clap_defaults()
    }
}
