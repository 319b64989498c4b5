//! Configuration: CLI flags, each with an environment variable (see the README table).

pub mod conn;
pub mod dbos;
pub mod read;
pub mod retention;
pub mod runtime;
pub mod security;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Default database: the local server with trust auth.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Settings for `flowgate serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Postgres connection URL. Unset: the default address if a server answers there, else
    /// a private cluster in `--data-dir`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Data directory of the private cluster used when no database is configured.
    #[arg(long, env = "FLOWGATE_DATA_DIR", default_value = ".flowgate/pg")]
    pub data_dir: std::path::PathBuf,

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

    /// Seconds of serving after SIGTERM with readiness failing (load balancers deregister).
    #[arg(long, env = "FLOWGATE_SHUTDOWN_DELAY", default_value_t = 5.0)]
    pub shutdown_delay: f64,

    /// Seconds running workflows get to finish after the delay.
    #[arg(long, env = "FLOWGATE_DRAIN_TIMEOUT", default_value_t = 30.0)]
    pub drain_timeout: f64,

    /// Concurrent SSE connections per process; beyond it 503 with Retry-After.
    #[arg(long, env = "FLOWGATE_MAX_SSE", default_value_t = 10_000)]
    pub max_sse: usize,

    /// Optional separate listener for /healthz, /readyz and /metrics.
    #[arg(long, env = "FLOWGATE_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// Comma-separated API keys for producers and administrators (none: loopback only).
    #[arg(
        long,
        env = "FLOWGATE_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Key that signs run tokens and approval links (random per process when unset).
    #[arg(long, env = "FLOWGATE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Allow a non-loopback bind without API keys.
    #[arg(long, env = "FLOWGATE_ALLOW_INSECURE", default_value_t = false)]
    pub allow_insecure: bool,

    /// Comma-separated origins allowed by CORS (`*` allows any origin, without credentials).
    #[arg(long, env = "FLOWGATE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Requests per second per API key (0: unlimited); bursts of twice that.
    #[arg(long, env = "FLOWGATE_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,

    /// Concurrent SSE connections per client (API key, run token + IP, or IP).
    #[arg(long, env = "FLOWGATE_MAX_SSE_PER_CLIENT", default_value_t = 100)]
    pub max_sse_per_client: usize,

    /// Lifetime of run tokens handed out when a run is created, in seconds.
    #[arg(long, env = "FLOWGATE_TOKEN_TTL", default_value_t = 86400)]
    pub token_ttl: u64,

    /// Seconds between the safety re-checks of live subscriptions (a backstop for wake-ups
    /// lost to a crash between commit and notify; not a polling loop).
    #[arg(long, env = "FLOWGATE_RECHECK", default_value_t = 30.0)]
    pub recheck: f64,

    /// Workflow runtime settings.
    #[command(flatten)]
    pub runtime: runtime::RuntimeConfig,

    /// Retention and sweeper settings.
    #[command(flatten)]
    pub retention: retention::RetentionConfig,
    /// Connection bounds (head timeout, idle timeout, caps, head sizes).
    #[command(flatten)]
    pub conn: conn::ConnConfig,
    /// Durable Streams long-poll timeout in seconds (also the SSE keep-alive period).
    #[arg(long, env = "FLOWGATE_DS_LONG_POLL", default_value_t = 30.0)]
    pub ds_long_poll: f64,

    /// Let Durable Streams webhook subscriptions call loopback addresses (local development).
    #[arg(long, env = "FLOWGATE_DS_WEBHOOK_LOOPBACK", default_value_t = false)]
    pub ds_webhook_loopback: bool,
    /// The DBOS source (off unless `FLOWGATE_DBOS_URL` is set).
    #[command(flatten)]
    pub dbos: dbos::DbosSettings,

    /// Client rate limits, link lifetimes, cookies and allowed hosts.
    #[command(flatten)]
    pub security: security::SecuritySettings,

    /// Reads from streaming standbys (off unless `FLOWGATE_READ_URL` is set).
    #[command(flatten)]
    pub read: read::ReadSettings,
}

/// Settings `T` at the defaults its flags declare, whatever the environment holds: the
/// flags are the one place a default is written.
pub(crate) fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
    let matches = cmd
        .try_get_matches_from(["defaults"])
        .unwrap_or_else(|e| panic!("the flags' defaults do not parse: {e}"));
    T::from_arg_matches(&matches).unwrap_or_else(|e| panic!("the flags' defaults are invalid: {e}"))
}

impl Config {
    /// Defaults with the given database and address (handy for tests and embedding).
    pub fn new(database_url: impl Into<String>, addr: SocketAddr) -> Self {
        Config {
            database_url: Some(database_url.into()),
            addr,
            ..clap_defaults()
        }
    }

    /// The settings `flowgate serve` uses when given no flags: each from its environment
    /// variable (`DATABASE_URL`, `FLOWGATE_ADDR`, … as in the README), else its default. For
    /// programs that embed flowgate; an invalid value is an error naming the variable.
    pub fn from_env() -> Result<Config, clap::Error> {
        #[derive(clap::Parser)]
        struct FromEnv {
            #[command(flatten)]
            config: Config,
        }
        <FromEnv as clap::Parser>::try_parse_from(["flowgate"]).map(|p| p.config)
    }

    /// The database URL to use (the default address when none is set).
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
    }

    /// Heartbeat period.
    pub fn heartbeat_period(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat.max(0.05))
    }

    /// Safety re-check period.
    pub fn recheck_period(&self) -> Duration {
        Duration::from_secs_f64(self.recheck.max(1.0))
    }

    /// Serving time after SIGTERM.
    pub fn shutdown_delay_period(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_delay.max(0.0))
    }

    /// Drain time for running workflows.
    pub fn drain_period(&self) -> Duration {
        Duration::from_secs_f64(self.drain_timeout.max(0.0))
    }

    /// Longest long-poll.
    pub fn max_wait_period(&self) -> Duration {
        let secs = if self.max_wait.is_finite() {
            self.max_wait
        } else {
            0.0
        };
        Duration::from_secs_f64(secs.clamp(0.0, 1e9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_flags() {
        let c = Config::new("postgres://x/y", "127.0.0.1:9".parse().unwrap());
        assert_eq!(c.database_url.as_deref(), Some("postgres://x/y"));
        assert_eq!(c.addr.port(), 9);
        assert_eq!(c.data_dir, std::path::Path::new(".flowgate/pg"));
        assert_eq!(
            (c.heartbeat, c.max_body, c.max_sse),
            (15.0, 1 << 20, 10_000)
        );
        assert_eq!((c.conn.header_timeout, c.conn.max_headers), (10.0, 64));
        assert_eq!(c.retention.retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.retention.gc_pause, Duration::from_millis(100));
        assert_eq!(c.dbos.schema, "dbos");
        assert_eq!(c.read.read_lag_bound_ms, 500);
        assert_eq!(c.runtime.max_attempts, 10);
        assert!(c.api_keys.is_empty() && c.read.read_url.is_empty());
    }
}
