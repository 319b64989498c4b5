//! Security settings beyond keys and CORS: per-client rate limits for run tokens and
//! anonymous clients, how long an approval link may outlive what minted it, the `Secure`
//! cookie flag, and the Host names a keyless (loopback) server answers to.

use clap::Args;

/// Flattened into [`crate::Config`] as `security`.
#[derive(Debug, Clone, Default, Args)]
pub struct SecuritySettings {
    /// Requests per second per run token, and per client IP for requests with no credential
    /// (bursts of twice that; 0: unlimited). Unset: 100 with API keys, unlimited without.
    #[arg(long, env = "FLOWGATE_CLIENT_RATE_LIMIT")]
    pub client_rate_limit: Option<u32>,

    /// Seconds an approval link may outlive the run token that minted it (0: never).
    #[arg(long, env = "FLOWGATE_LINK_GRACE", default_value_t = 0)]
    pub link_grace: u64,

    /// Always mark the `flowgate_token` cookie `Secure` (it is also set when a proxy says
    /// `X-Forwarded-Proto: https`).
    #[arg(long, env = "FLOWGATE_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Comma-separated extra Host names a keyless server answers to (besides localhost,
    /// 127.0.0.1, [::1] and the bound address), e.g. a Docker host name.
    #[arg(long, env = "FLOWGATE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}
