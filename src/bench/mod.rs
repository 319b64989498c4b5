//! `flowgate bench`: bounded scenarios on 127.0.0.1 against a fresh database, printed as a
//! table (and JSON with `--json`). The server runs as a child process (so its memory is
//! measured alone); clients read SSE with an independent parser (`eventsource-stream`).

pub mod cost;
pub mod dbos;
pub mod delivery;
pub mod ds;
pub mod ds_reference;
pub mod ds_table;
pub mod fanout;
pub mod nchan;
pub mod pgbench;
pub mod queries;
pub mod replica;
pub mod runtime;
mod scenarios;
pub mod stats;
pub mod sweep;
pub mod throughput;
pub mod wakeup;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::config::DEFAULT_DATABASE_URL;
use crate::store::Store;

/// One result: its table line and its JSON.
pub type Row = (String, Value);

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
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// SSE connections in the fan-out scenario (comma-separated for several runs).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 1000, 10_000])]
    pub fanout: Vec<usize>,
    /// Run the fan-out scenario against Nchan too (nginx + libnginx-mod-nchan, installed
    /// with apt-get when missing), side by side in the same run.
    #[arg(long)]
    pub nchan: bool,
    /// Seconds the fan-out scenario writes for (10 records/s).
    #[arg(long, default_value_t = 30.0)]
    pub fanout_seconds: f64,
    /// Scenarios (comma-separated): delivery, wakeup, throughput, cost, fanout, health,
    /// queries, queue, sweep, durable (Durable Streams), replica (a private primary and
    /// streaming standby), dbos (needs the DBOS venv, see README).
    #[arg(long, value_delimiter = ',', default_values_t = ["delivery", "wakeup", "throughput", "cost", "fanout", "health", "queries", "queue", "sweep", "durable", "replica"].map(String::from).to_vec())]
    pub only: Vec<String>,
    /// Skip the Node reference server beside flowgate in the durable scenario (as `--smoke`).
    #[arg(long)]
    pub no_ds_reference: bool,
    /// Expired stream records the sweep scenario removes (in runs of 1000 records).
    #[arg(long, default_value_t = 1_000_000)]
    pub sweep_records: i64,
    /// A few seconds in all: proves the command works (used by CI).
    #[arg(long)]
    pub smoke: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A bench database and a `flowgate serve` child process on it; dropped at the end.
pub struct Bench {
    /// Server base URL.
    pub base: String,
    /// The bench database (for SQL producers and statistics).
    pub store: Store,
    /// The bench database URL.
    pub db_url: String,
    /// HTTP client.
    pub http: reqwest::Client,
    server: Child,
    extra: Vec<Child>,
    admin_url: String,
    db_name: String,
}

impl Bench {
    /// Creates a fresh database and starts a server process on it.
    pub async fn start(admin_url: &str) -> anyhow::Result<Bench> {
        let admin = Store {
            pool: sqlx::PgPool::connect(admin_url).await?,
        };
        let db_name = format!("flowgate_bench_{:08x}", rand::random::<u32>());
        admin.create_database(&db_name).await?;
        admin.pool.close().await;
        let base_url = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        let db_url = format!("{base_url}/{db_name}");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .build()?;
        let (server, base) = spawn_server(&http, &db_url).await?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(&db_url)
            .await?;
        Ok(Bench {
            base,
            store: Store { pool },
            db_url,
            http,
            server,
            extra: Vec::new(),
            admin_url: admin_url.to_string(),
            db_name,
        })
    }

    /// Starts another server process on the same database; returns its base URL.
    pub async fn add_server(&mut self) -> anyhow::Result<String> {
        let (child, base) = spawn_server(&self.http, &self.db_url).await?;
        self.extra.push(child);
        Ok(base)
    }

    /// Stops the extra server processes.
    pub async fn stop_extra(&mut self) {
        for mut c in std::mem::take(&mut self.extra) {
            stop_child(&mut c).await;
        }
    }

    /// Stops the servers and drops the database.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        self.stop_extra().await;
        stop_child(&mut self.server).await;
        self.store.pool.close().await;
        let admin = Store {
            pool: sqlx::PgPool::connect(&self.admin_url).await?,
        };
        admin.drop_database(&self.db_name).await?;
        Ok(())
    }

    /// The server's resident memory in bytes.
    pub fn server_rss(&self) -> u64 {
        self.server
            .id()
            .map(|pid| crate::http::health::rss_of(&pid.to_string()))
            .unwrap_or(0)
    }

    /// The first server's process id.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.id()
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

    /// Opens an SSE response on `url` (fails unless it answers 200).
    pub async fn subscribe(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        let resp = self.http.get(url).send().await?;
        anyhow::ensure!(resp.status() == 200, "subscribe: {}", resp.status());
        Ok(resp)
    }

    /// Appends the JSON array `records` to the stream at `url` over HTTP (fails unless it
    /// answers 200).
    pub async fn append(&self, url: &str, records: &Value) -> anyhow::Result<reqwest::Response> {
        let r = self.http.post(url).json(records).send().await?;
        anyhow::ensure!(r.status() == 200, "append: {}", r.status());
        Ok(r)
    }

    /// Transactions committed in the bench database so far (statistics flush lazily, so
    /// callers wait for them to settle first).
    pub async fn xact_commits(&self) -> anyhow::Result<i64> {
        Ok(self.store.xact_commits().await?)
    }
}

/// Starts `flowgate serve` (with the hidden bench workflows and 16 `default` queue slots)
/// on `db_url` and waits until it is ready.
async fn spawn_server(http: &reqwest::Client, db_url: &str) -> anyhow::Result<(Child, String)> {
    spawn_server_env(http, db_url, &[]).await
}

/// [`spawn_server`] with extra environment variables.
pub(crate) async fn spawn_server_env(
    http: &reqwest::Client,
    db_url: &str,
    env: &[(&str, String)],
) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // FLOWGATE_BENCH_SERVER runs another build as the server (to compare builds with the
    // same client and baselines).
    let exe = match std::env::var_os("FLOWGATE_BENCH_SERVER") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?,
    };
    let server = Command::new(exe)
        .args(["serve", "--test-workflows", "--queue", "default:16"])
        .env("DATABASE_URL", db_url)
        .env("FLOWGATE_ADDR", format!("127.0.0.1:{port}"))
        .env("FLOWGATE_SHUTDOWN_DELAY", "0")
        .env("FLOWGATE_MAX_SSE", "50000")
        .env("FLOWGATE_MAX_SSE_PER_CLIENT", "50000")
        // Every bench client comes from 127.0.0.1: lift the per-address connection cap.
        .env("FLOWGATE_MAX_CONNECTIONS", "50000")
        .env("FLOWGATE_MAX_CONNECTIONS_PER_IP", "50000")
        .env("FLOWGATE_POOL_SIZE", "32")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok((server, base));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the server did not become ready")
}

/// SIGTERM, then up to 20 s for the child to exit (it is killed when dropped).
pub(crate) async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
}

/// Runs the chosen scenarios and prints the table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let _ = rlimit::increase_nofile_limit(1 << 20);
    let mut args = args;
    if args.smoke {
        args.records = 50;
        args.subscribers = vec![1, 10];
        args.seconds = 0.5;
        args.fanout = vec![50];
        args.fanout_seconds = 1.0;
        args.sweep_records = 2000;
    }
    let mut bench = Bench::start(&args.database_url).await?;
    println!(
        "flowgate bench — {} cores, server pid RSS at start {:.1} MB",
        num_cpus(),
        bench.server_rss() as f64 / 1048576.0
    );
    // The bench database is dropped even when a scenario fails.
    let results = scenarios::run(&mut bench, &args).await;
    bench.finish().await?;
    let results = results?;
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
