//! Settings of the read path: standby URLs, the lag bound and the probe period.

use std::time::Duration;

use clap::Args;

/// Flags for reading from streaming standbys (flattened into `flowgate serve`).
#[derive(Debug, Clone, Args)]
pub struct ReadSettings {
    /// Comma-separated URLs of streaming standbys of `DATABASE_URL`: stream, event, live
    /// and list reads go there; writes, LISTEN and reads of one's own writes stay on the
    /// primary. Unset: every read goes to the primary.
    #[arg(
        long,
        env = "FLOWGATE_READ_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub read_url: Vec<String>,

    /// Longest wait, in milliseconds, for a standby to replay a position a reader needs;
    /// past it the primary answers (counted in `flowgate_read_fallbacks_total`).
    #[arg(long, env = "FLOWGATE_READ_LAG_BOUND_MS", default_value_t = 500)]
    pub read_lag_bound_ms: u64,

    /// Milliseconds between probes of each standby's replay position (lag metrics,
    /// readiness, and the return of a standby that was set aside).
    #[arg(long, env = "FLOWGATE_READ_PROBE_MS", default_value_t = 1000)]
    pub read_probe_ms: u64,
}

impl Default for ReadSettings {
    /// The flags' defaults, as `flowgate serve` has them with nothing set.
    fn default() -> Self {
        super::clap_defaults()
    }
}

impl ReadSettings {
    /// The lag bound (at least 10 ms, at most 10 minutes).
    pub fn bound(&self) -> Duration {
        Duration::from_millis(self.read_lag_bound_ms.clamp(10, 600_000))
    }

    /// The probe period (at least 50 ms, at most 10 minutes).
    pub fn probe(&self) -> Duration {
        Duration::from_millis(self.read_probe_ms.clamp(50, 600_000))
    }
}
