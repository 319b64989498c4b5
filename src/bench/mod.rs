//! `flowgate bench`: bounded scenarios on 127.0.0.1 against a fresh database, printed as a
//! table (and JSON with `--json`). Clients read SSE with an independent parser
//! (`eventsource-stream`), never with our own code.

pub mod delivery;
pub mod stats;

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use crate::config::{Config, DEFAULT_DATABASE_URL};

/// Settings for `flowgate bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Postgres server to benchmark against (a fresh database is created and dropped on it).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Records per delivery run.
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    /// Appends per second in the delivery runs.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Subscriber counts for the delivery runs.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 100, 1000])]
    pub subscribers: Vec<usize>,
    /// A few seconds in all: proves the command works (used by CI).
    #[arg(long)]
    pub smoke: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A bench database and a server on it; dropped at the end.
pub struct Bench {
    /// Server base URL.
    pub base: String,
    /// The running server.
    pub app: crate::RunningApp,
    /// HTTP client.
    pub http: reqwest::Client,
    admin_url: String,
    db_name: String,
}

impl Bench {
    /// Creates a fresh database and starts a server on it.
    pub async fn start(admin_url: &str) -> anyhow::Result<Bench> {
        let admin = sqlx::PgPool::connect(admin_url).await?;
        let db_name = format!("flowgate_bench_{:08x}", rand::random::<u32>());
        sqlx::query(&format!("CREATE DATABASE {db_name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        let base_url = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        let mut config = Config::new(format!("{base_url}/{db_name}"), "127.0.0.1:0".parse()?);
        config.pool_size = 32;
        let app = crate::start(config).await?;
        let base = format!("http://{}", app.addr);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .build()?;
        Ok(Bench {
            base,
            app,
            http,
            admin_url: admin_url.to_string(),
            db_name,
        })
    }

    /// Stops the server and drops the database.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.app.stop().await;
        let admin = sqlx::PgPool::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.db_name
        ))
        .execute(&admin)
        .await?;
        Ok(())
    }

    /// `base + path`
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates an external run.
    pub async fn create_run(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .put(self.url(&format!("/v1/workflows/{id}")))
            .json(&json!({"workflow": "bench"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "create run: {}", r.status());
        Ok(())
    }
}

/// Runs every scenario and prints the table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let _ = rlimit::increase_nofile_limit(1 << 20);
    let mut args = args;
    if args.smoke {
        args.records = 50;
        args.subscribers = vec![1, 10];
    }
    let bench = Bench::start(&args.database_url).await?;
    let mut results: Vec<Value> = Vec::new();
    for &subs in &args.subscribers {
        for writer in [delivery::Writer::Http, delivery::Writer::Sql] {
            let r = delivery::run(&bench, writer, subs, args.records, args.rate).await?;
            println!("{}", r.line());
            results.push(r.json());
        }
    }
    bench.finish().await?;
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}
