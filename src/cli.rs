//! The `flowgate` command line: `serve` (default), `migrate`, `gc`, and the client commands
//! `run`, `tail`, `approve`, `reject` and `finish`, which talk to a server over HTTP.

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_DATABASE_URL};
use std::time::Duration;

use crate::private_pg::PrivateCluster;
use crate::store::Store;

/// The server the client commands talk to.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Server URL.
    #[arg(long, env = "FLOWGATE_URL", default_value = crate::client::DEFAULT_URL)]
    pub url: String,
    /// API key, for a server with `FLOWGATE_API_KEYS`.
    #[arg(long, env = "FLOWGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl Remote {
    fn client(self) -> crate::client::Client {
        crate::client::Client::new(self.url).with_api_key(self.api_key)
    }
}

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
    Serve(Box<Config>),
    /// Run the benchmarks against a fresh database on `DATABASE_URL`'s server.
    Bench(crate::bench::BenchArgs),
    /// Remove expired runs and old consumed messages now (`--dry-run`: only count them).
    Gc(crate::lifecycle::GcArgs),
    /// Run migrations and exit.
    Migrate {
        /// Postgres connection URL.
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Start a workflow on a server and print its id and page address, or with --wait its
    /// result.
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
        /// Tag the run (repeatable: `--tag user:42 --tag batch-7`).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The server.
        #[command(flatten)]
        remote: Remote,
    },
    /// DBOS source tools (see the README's "DBOS apps").
    #[command(subcommand)]
    Dbos(crate::dbos::cli::DbosCommand),
    /// Follow a run: status, progress bar, streamed text, the approval prompt, its outcome.
    Tail {
        /// Run id.
        id: String,
        /// The server.
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve a run that waits for a decision (as the page's Approve button does).
    Approve(Decide),
    /// Reject a run that waits for a decision (as the page's Reject button does).
    Reject(Decide),
    /// Finish an external run (one created with `PUT /v1/workflows/{id}`).
    Finish {
        /// Run id.
        id: String,
        /// SUCCESS, ERROR or CANCELLED.
        #[arg(long, default_value = "SUCCESS")]
        status: String,
        /// Output JSON.
        #[arg(long)]
        output: Option<String>,
        /// Error JSON.
        #[arg(long)]
        error: Option<String>,
        /// The server.
        #[command(flatten)]
        remote: Remote,
    },
}

/// Arguments of `approve` and `reject`.
#[derive(Debug, clap::Args)]
pub struct Decide {
    /// Run id.
    pub id: String,
    /// Why (shown with the decision).
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Who decides (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub approver: Option<String>,
    /// The topic the run receives decisions on.
    #[arg(long, default_value = crate::http::access::grant::DEFAULT_TOPIC)]
    pub topic: String,
    /// The server.
    #[command(flatten)]
    pub remote: Remote,
}

impl Decide {
    async fn run(self, approve: bool) -> anyhow::Result<()> {
        let approver = self
            .approver
            .or_else(|| std::env::var("USER").ok())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "approver".into());
        let client = self.remote.client();
        crate::remote::decide(
            &client,
            &self.id,
            approve,
            &approver,
            &self.topic,
            &self.comment,
        )
        .await
    }
}

/// Runs the parsed command line; the error is printed by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(config)) => serve(*config).await,
        None => serve(Cli::parse_from(["flowgate", "serve"]).serve_config()).await,
        Some(Command::Bench(args)) => crate::bench::run(args).await,
        Some(Command::Gc(args)) => {
            print!("{}", crate::lifecycle::gc(args).await?);
            Ok(())
        }
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
            tags,
            remote,
        }) => {
            let opts = crate::client::StartOptions {
                id,
                queue,
                tags,
                wait: wait.then(|| std::time::Duration::from_secs_f64(timeout.clamp(0.0, 3600.0))),
            };
            crate::remote::run(&remote.client(), &workflow, &input, opts).await
        }
        Some(Command::Dbos(cmd)) => crate::dbos::cli::run(cmd).await,
        Some(Command::Tail { id, remote }) => crate::tail::tail(&remote.client(), &id).await,
        Some(Command::Approve(d)) => d.run(true).await,
        Some(Command::Reject(d)) => d.run(false).await,
        Some(Command::Finish {
            id,
            status,
            output,
            error,
            remote,
        }) => {
            let client = remote.client();
            crate::remote::finish(&client, &id, &status, output.as_deref(), error.as_deref()).await
        }
    }
}

impl Cli {
    fn serve_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c)) => *c,
            _ => unreachable!("parsed from a serve command line"),
        }
    }
}

/// With no `DATABASE_URL`: the default address if a server answers there, else a private
/// cluster (returned so it can be stopped on exit).
async fn resolve_database(config: &mut Config) -> anyhow::Result<Option<PrivateCluster>> {
    if config.database_url.is_some() {
        return Ok(None);
    }
    let default = std::env::var("FLOWGATE_DEFAULT_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    let probe = tokio::time::timeout(Duration::from_secs(3), sqlx::PgPool::connect(&default)).await;
    if let Ok(Ok(pool)) = probe {
        pool.close().await;
        config.database_url = Some(default);
        return Ok(None);
    }
    tracing::info!(default = %default, "DATABASE_URL is unset and nothing answers at the default address");
    let cluster = PrivateCluster::start(&config.data_dir).await?;
    config.database_url = Some(cluster.url.clone());
    Ok(Some(cluster))
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let cluster = resolve_database(&mut config).await?;
    let result = serve_on(config).await;
    if let Some(c) = cluster {
        c.stop().await;
    }
    result
}

async fn serve_on(config: Config) -> anyhow::Result<()> {
    let (delay, drain) = (config.shutdown_delay_period(), config.drain_period());
    let workflows = crate::demo::builder(config.runtime.test_workflows);
    let app = crate::app::start_with(config, Some(workflows)).await?;
    let stopped = app.shutdown.clone();
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = stopped.cancelled() => {}
    }
    tracing::info!("signal received: shutting down gracefully (a second signal exits at once)");
    let report = tokio::select! {
        r = app.graceful_shutdown(delay, drain) => r,
        _ = wait_for_signal() => {
            tracing::warn!("second signal: exiting now; unfinished work stays PENDING for recovery");
            std::process::exit(130);
        }
    };
    tracing::info!(
        unfinished_workflows = report.unfinished_workflows,
        clean = report.clean,
        "stopped"
    );
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
