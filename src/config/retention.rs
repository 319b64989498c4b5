//! Retention settings: how long finished runs, idle external runs and consumed messages are
//! kept, and how the sweeper paces itself. Durations are seconds or `7d`/`12h`/`30m`/`500ms`.

use std::time::Duration;

use clap::Args;

/// Flags of the data lifecycle (flattened into `flowgate serve` and `flowgate gc`).
#[derive(Debug, Clone, Args)]
pub struct RetentionConfig {
    /// How long finished runs (SUCCESS, ERROR, CANCELLED) are kept, with everything they
    /// own, and how long consumed messages are kept; `0` keeps them forever.
    #[arg(long = "retention", env = "FLOWGATE_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// An external run (created with PUT) that nobody finishes is ended (CANCELLED) after this
    /// long without a write, then removed like any finished run.
    #[arg(long = "retention-idle", env = "FLOWGATE_RETENTION_IDLE", default_value = "30d", value_parser = parse_duration)]
    pub idle: Duration,

    /// Time between background sweeps (`0`: none in this process; `flowgate gc` still sweeps).
    #[arg(long = "gc-interval", env = "FLOWGATE_GC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub gc_interval: Duration,

    /// Most rows one sweep transaction deletes.
    #[arg(long = "gc-batch", env = "FLOWGATE_GC_BATCH", default_value_t = 2000)]
    pub gc_batch: u32,

    /// Least pause between two sweep transactions.
    #[arg(long = "gc-pause", env = "FLOWGATE_GC_PAUSE", default_value = "100ms", value_parser = parse_duration)]
    pub gc_pause: Duration,

    /// Largest share of time a sweep keeps its connection busy (0.01–1): after a
    /// transaction that took t, it pauses at least t × (1 / duty − 1).
    #[arg(long = "gc-duty", env = "FLOWGATE_GC_DUTY", default_value_t = 0.2)]
    pub gc_duty: f64,
}

impl Default for RetentionConfig {
    /// The flags' defaults, as `flowgate serve` has them with nothing set.
    fn default() -> Self {
        super::clap_defaults()
    }
}

impl RetentionConfig {
    /// The default retention in seconds (0: forever).
    pub fn retention_secs(&self) -> f64 {
        self.retention.as_secs_f64()
    }

    /// The idle period in seconds (0: external runs are never ended for idleness).
    pub fn idle_secs(&self) -> f64 {
        self.idle.as_secs_f64()
    }

    /// Pause after a transaction, per second it took (from `gc_duty`, clamped to 0.01–1).
    pub fn pause_factor(&self) -> f64 {
        let duty = if self.gc_duty.is_finite() {
            self.gc_duty.clamp(0.01, 1.0)
        } else {
            0.2
        };
        1.0 / duty - 1.0
    }

    /// Rows per transaction (at least 1).
    pub fn batch(&self) -> i64 {
        i64::from(self.gc_batch.max(1))
    }
}

/// Parses `3600`, `1.5`, `7d`, `12h`, `30m`, `500ms` (and other humantime forms).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{s:?}: seconds must be a finite number ≥ 0"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (use seconds, or a duration such as 7d, 12h, 30m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration(" 30m "), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn pause_keeps_the_duty_cycle() {
        let with = |gc_duty| RetentionConfig {
            gc_duty,
            ..Default::default()
        };
        let near = |duty: f64, factor: f64| (with(duty).pause_factor() - factor).abs() < 1e-9;
        assert!(near(0.2, 4.0));
        assert!(near(1.0, 0.0));
        assert!(near(5.0, 0.0));
        assert!(near(0.0, 99.0));
        assert!(near(f64::NAN, 4.0));
    }
}
