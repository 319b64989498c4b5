//! `flowgate dbos …`: installing or removing the optional status trigger.

use clap::Subcommand;

/// `flowgate dbos` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbosCommand {
    /// Install a trigger on DBOS's workflow_status that notifies flowgate of status changes
    /// (instead of flowgate re-reading watched runs' status). Adds a NOTIFY to DBOS's status
    /// writes; off by default.
    InstallTrigger {
        /// The DBOS system database.
        #[arg(long, env = "FLOWGATE_DBOS_URL", hide_env_values = true)]
        dbos_url: String,
        /// The DBOS system schema.
        #[arg(long, env = "FLOWGATE_DBOS_SCHEMA", default_value = "dbos")]
        dbos_schema: String,
    },
    /// Remove that trigger.
    RemoveTrigger {
        /// The DBOS system database.
        #[arg(long, env = "FLOWGATE_DBOS_URL", hide_env_values = true)]
        dbos_url: String,
        /// The DBOS system schema.
        #[arg(long, env = "FLOWGATE_DBOS_SCHEMA", default_value = "dbos")]
        dbos_schema: String,
    },
}

/// Runs a `flowgate dbos` subcommand.
pub async fn run(cmd: DbosCommand) -> anyhow::Result<()> {
    let (url, schema, install) = match cmd {
        DbosCommand::InstallTrigger {
            dbos_url,
            dbos_schema,
        } => (dbos_url, dbos_schema, true),
        DbosCommand::RemoveTrigger {
            dbos_url,
            dbos_schema,
        } => (dbos_url, dbos_schema, false),
    };
    let pool = sqlx::PgPool::connect(&url).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the DBOS database: {}",
            super::redacted(&e)
        )
    })?;
    super::schema::check(&pool, &schema).await?;
    if install {
        super::trigger::install(&pool, &schema).await?;
        println!("status trigger installed on {schema}.workflow_status");
    } else {
        super::trigger::remove(&pool, &schema).await?;
        println!("status trigger removed from {schema}.workflow_status");
    }
    Ok(())
}
