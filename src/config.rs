//! Configuration: CLI flags, each with an environment variable (see the README table).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Default database: the local server with trust auth.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Settings for `flowgate serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Address the HTTP server listens on.
    #[arg(long, env = "FLOWGATE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Seconds between SSE heartbeat comments.
    #[arg(long, env = "FLOWGATE_HEARTBEAT", default_value_t = 15.0)]
    pub heartbeat: f64,

    /// Request body limit in bytes.
    #[arg(long, env = "FLOWGATE_MAX_BODY", default_value_t = 1 << 20)]
    pub max_body: usize,

    /// Largest single value (event value, stream record, message body) in bytes.
    #[arg(long, env = "FLOWGATE_MAX_VALUE", default_value_t = 256 * 1024)]
    pub max_value: usize,

    /// Most records accepted in one append.
    #[arg(long, env = "FLOWGATE_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,

    /// Longest long-poll wait in seconds (a client's `timeout` is capped to it).
    #[arg(long, env = "FLOWGATE_MAX_WAIT", default_value_t = 120.0)]
    pub max_wait: f64,

    /// Database pool size.
    #[arg(long, env = "FLOWGATE_POOL_SIZE", default_value_t = 16)]
    pub pool_size: u32,

    /// Seconds between the safety re-checks of live subscriptions (a backstop for wake-ups
    /// lost to a crash between commit and notify; not a polling loop).
    #[arg(long, env = "FLOWGATE_RECHECK", default_value_t = 30.0)]
    pub recheck: f64,

    /// Workflow runtime settings.
    #[command(flatten)]
    pub runtime: crate::runtime::config::RuntimeConfig,
}

impl Config {
    /// Defaults with the given database and address (handy for tests and embedding).
    pub fn new(database_url: impl Into<String>, addr: SocketAddr) -> Self {
        Config {
            database_url: database_url.into(),
            addr,
            heartbeat: 15.0,
            max_body: 1 << 20,
            max_value: 256 * 1024,
            max_batch: 1000,
            max_wait: 120.0,
            pool_size: 16,
            recheck: 30.0,
            runtime: Default::default(),
        }
    }

    /// Heartbeat period.
    pub fn heartbeat_period(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat.max(0.05))
    }

    /// Safety re-check period.
    pub fn recheck_period(&self) -> Duration {
        Duration::from_secs_f64(self.recheck.max(1.0))
    }

    /// Longest long-poll.
    pub fn max_wait_period(&self) -> Duration {
        Duration::from_secs_f64(self.max_wait.max(0.0))
    }
}
