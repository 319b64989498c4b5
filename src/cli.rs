//! The `flowgate` command line: `serve` (default), `migrate`, and the client commands
//! `run` and `tail`.

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
    /// Run migrations and exit.
    Migrate {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Start a workflow on a server and print its id, or with --wait its result.
    Run {
        /// Workflow name.
        workflow: String,
        /// Input JSON.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Wait for the result (up to --timeout seconds).
        #[arg(long)]
        wait: bool,
        /// Seconds --wait waits at most.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Run id (idempotent start).
        #[arg(long)]
        id: Option<String>,
        /// Enqueue on this queue instead of starting at once.
        #[arg(long)]
        queue: Option<String>,
        /// Server URL.
        #[arg(long, env = "FLOWGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Follow a run: progress bar, streamed tokens, then its outcome.
    Tail {
        /// Run id.
        id: String,
        /// Server URL.
        #[arg(long, env = "FLOWGATE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

/// Runs the parsed command line; the error is printed by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(config)) => serve(config).await,
        None => serve(Cli::parse_from(["flowgate", "serve"]).serve_config()).await,
        Some(Command::Migrate { database_url }) => {
            let store = Store::connect(&database_url, 1).await?;
            store.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(Command::Run {
            workflow,
            input,
            wait,
            timeout,
            id,
            queue,
            url,
        }) => {
            let opts = crate::client::StartOptions {
                id,
                queue,
                wait: wait.then(|| std::time::Duration::from_secs_f64(timeout.clamp(0.0, 3600.0))),
            };
            crate::tail::run(&crate::client::Client::new(url), &workflow, &input, opts).await
        }
        Some(Command::Tail { id, url }) => {
            crate::tail::tail(&crate::client::Client::new(url), &id).await
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
    let workflows = crate::demo::builder(config.runtime.test_workflows);
    let app = crate::app::start_with(config, Some(workflows)).await?;
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
