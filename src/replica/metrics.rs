//! The read path's counters and gauges (`flowgate_read_*`, `flowgate_replica_*`).

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counters and gauges of the read path.
#[derive(Clone)]
pub struct ReplicaMetrics {
    /// Read queries by target (`standby`, `primary`).
    pub reads: IntCounterVec,
    /// Reads sent to the primary by reason (`lag`, `error`, `unavailable`).
    pub fallbacks: IntCounterVec,
    /// Fence queries sent to the primary.
    pub fences: IntCounter,
    /// Replay lag in bytes, per standby.
    pub lag_bytes: IntGaugeVec,
    /// Replay lag in milliseconds as seen by this gateway, per standby.
    pub lag_ms: IntGaugeVec,
    /// 1 while the standby serves reads, per standby.
    pub serving: IntGaugeVec,
    /// 1 once the standby left recovery (was promoted): it no longer follows the primary
    /// and serves nothing until it is a standby again.
    pub promoted: IntGaugeVec,
}

impl ReplicaMetrics {
    /// Registers the metrics in `r`.
    pub fn register(r: &Registry) -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &[label]).expect("metric");
            let _ = r.register(Box::new(v.clone()));
            v
        };
        let gauge = |name: &str, help: &str| {
            let v = IntGaugeVec::new(Opts::new(name, help), &["standby"]).expect("metric");
            let _ = r.register(Box::new(v.clone()));
            v
        };
        let fences = IntCounter::new(
            "replica_fences_total",
            "WAL position queries sent to the primary",
        )
        .expect("metric");
        let _ = r.register(Box::new(fences.clone()));
        ReplicaMetrics {
            reads: vec(
                "read_queries_total",
                "Read queries by target (standby, primary)",
                "target",
            ),
            fallbacks: vec(
                "read_fallbacks_total",
                "Reads served by the primary instead of a standby, by reason",
                "reason",
            ),
            fences,
            lag_bytes: gauge("replica_lag_bytes", "Standby replay lag in bytes of WAL"),
            lag_ms: gauge(
                "replica_lag_ms",
                "Standby replay lag in milliseconds, as seen by this gateway",
            ),
            serving: gauge("replica_serving", "1 while the standby serves reads"),
            promoted: gauge(
                "replica_promoted",
                "1 while the read URL is out of recovery (promoted): it is not used",
            ),
        }
    }
}
