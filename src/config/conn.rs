//! Connection-layer settings: head and idle deadlines, connection caps, request-head bounds.

use std::time::Duration;

use clap::Args;

/// Connection settings (flags and environment variables of `flowgate serve`).
#[derive(Debug, Clone, Args)]
pub struct ConnConfig {
    /// Seconds a client has to send a complete request head; then the connection is closed.
    #[arg(long, env = "FLOWGATE_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,

    /// Seconds an idle keep-alive connection (no request in progress) is kept open.
    #[arg(long, env = "FLOWGATE_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,

    /// Open connections per process; beyond it new ones get 503 with Retry-After.
    #[arg(long, env = "FLOWGATE_MAX_CONNECTIONS", default_value_t = 25_000)]
    pub max_connections: usize,

    /// Open connections per client address; beyond it new ones get 429 with Retry-After.
    #[arg(
        long,
        env = "FLOWGATE_MAX_CONNECTIONS_PER_IP",
        default_value_t = 10_000
    )]
    pub max_connections_per_ip: usize,

    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "FLOWGATE_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Longest request URI in bytes; longer gets 414.
    #[arg(long, env = "FLOWGATE_MAX_URI_BYTES", default_value_t = 8 * 1024)]
    pub max_uri_bytes: usize,

    /// Most request headers; more gets 431.
    #[arg(long, env = "FLOWGATE_MAX_HEADERS", default_value_t = 64)]
    pub max_headers: usize,
}

impl Default for ConnConfig {
    /// The flags' defaults, as `flowgate serve` has them with nothing set.
    fn default() -> Self {
        super::clap_defaults()
    }
}

impl ConnConfig {
    fn secs(v: f64) -> Duration {
        Duration::from_secs_f64(if v.is_finite() {
            v.clamp(0.05, 86_400.0)
        } else {
            60.0
        })
    }

    /// The head deadline.
    pub fn header_period(&self) -> Duration {
        Self::secs(self.header_timeout)
    }

    /// The idle deadline.
    pub fn idle_period(&self) -> Duration {
        Self::secs(self.idle_timeout)
    }
}
