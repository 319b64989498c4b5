//! The `flowgate` command line: `serve` (default) and `migrate`.

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_DATABASE_URL};
use crate::store::Store;

/// flowgate: durable workflows and a live gateway on Postgres.
#[derive(Debug, Parser)]
#[command(name = "flowgate", version)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, then serve HTTP until SIGTERM or Ctrl-C.
    Serve(Config),
    /// Run the benchmarks against a fresh database on `DATABASE_URL`'s server.
    Bench(crate::bench::BenchArgs),
    /// Run migrations and exit.
    Migrate {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
}

/// Runs the parsed command line; the error is printed by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(config)) => serve(config).await,
        None => serve(Cli::parse_from(["flowgate", "serve"]).serve_config()).await,
        Some(Command::Bench(args)) => crate::bench::run(args).await,
        Some(Command::Migrate { database_url }) => {
            let store = Store::connect(&database_url, 1).await?;
            store.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

impl Cli {
    fn serve_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c)) => c,
            _ => unreachable!("parsed from a serve command line"),
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = crate::app::start(config).await?;
    let shutdown = app.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down");
        shutdown.cancel();
    });
    app.wait().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
