//! Percentiles over latency samples.

use serde_json::{json, Value};

/// Summary of samples in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Sample count.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// Summarises `samples` (ms); all zero when empty.
    pub fn of(samples: &mut [f64]) -> Summary {
        samples.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples[i]
        };
        Summary {
            n: samples.len(),
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: q(1.0),
        }
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({"n": self.n, "p50_ms": r(self.p50), "p95_ms": r(self.p95), "p99_ms": r(self.p99), "max_ms": r(self.max)})
    }

    /// `p50 / p95 / p99 / max` for a table.
    pub fn cells(&self) -> String {
        format!(
            "{:>7.2} {:>7.2} {:>7.2} {:>7.2}",
            self.p50, self.p95, self.p99, self.max
        )
    }
}

fn r(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
