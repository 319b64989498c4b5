//! Prometheus metrics: one registry per server, rendered at `/metrics`.
//!
//! Counters and histograms are updated on the paths that do the work; gauges that mirror
//! state (listener, pool, workflows by status) are read when scraped.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Every metric the server exports.
#[derive(Clone)]
pub struct Metrics {
    /// The registry they live in.
    pub registry: Registry,
    /// Open SSE responses.
    pub sse_open: IntGauge,
    /// Long-polls waiting.
    pub long_polls_waiting: IntGauge,
    /// Records appended through this process.
    pub records_appended: IntCounter,
    /// Records written to SSE responses and long-poll answers.
    pub records_delivered: IntCounter,
    /// Events set through this process.
    pub events_set: IntCounter,
    /// Events delivered to readers.
    pub events_delivered: IntCounter,
    /// Messages sent through this process.
    pub messages_sent: IntCounter,
    /// Notes published by this process, by kind.
    pub notes_published: IntCounterVec,
    /// Time from a wake-up reaching the hub to a record reaching a subscriber's response.
    pub delivery_seconds: Histogram,
    /// Writes per group commit (one statement, one transaction).
    pub commit_batch_writes: Histogram,
    /// Durations of workflow steps (`step`, `step_blocking`), including retries.
    pub step_seconds: Histogram,
    /// Broadcast lag events (a slow subscriber fell back to the database).
    pub lagged: IntCounter,
    /// Database reads by stream fetchers after a wake-up (records handed over by this
    /// process's own writes need none).
    pub stream_reads: IntCounter,
    /// SSE connections refused at the limit.
    pub sse_rejected: IntCounter,
    /// Reads of the run change feed (the shared fetcher's and lists catching up).
    pub run_feed_reads: IntCounter,
    /// Open client connections.
    pub connections_open: IntGauge,
    /// Connections refused or closed by a bound, by reason (`process_limit`,
    /// `address_limit`, `header_timeout`, `idle_timeout`).
    pub connections_refused: IntCounterVec,
    /// Listener reconnects (mirrored at scrape).
    pub listener_reconnects: IntGauge,
    /// 1 while the listener is connected (mirrored at scrape).
    pub listener_connected: IntGauge,
    /// Pool connections (mirrored at scrape).
    pub pool_size: IntGauge,
    /// Idle pool connections (mirrored at scrape).
    pub pool_idle: IntGauge,
    /// Live hub topics (mirrored at scrape).
    pub hub_topics: IntGauge,
    /// Rows the retention sweeper deleted, by table.
    pub gc_rows_deleted: IntCounterVec,
    /// Durations of retention sweeps.
    pub gc_sweep_seconds: Histogram,
    /// Handlers or response streams that panicked (answered 500 or ended cleanly).
    pub http_panics: IntCounter,
}

/// Buckets of `delivery_seconds`: sub-millisecond to a few seconds.
const DELIVERY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets of `step_seconds`: a millisecond to five minutes.
const STEP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0,
];
/// Buckets of `gc_sweep_seconds`: ten milliseconds to half an hour.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
const SWEEP_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0];

/// Registers metrics built from constant definitions (which cannot fail; a name already
/// registered is left as it is).
struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn add<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: Result<M, prometheus::Error>,
    ) -> M {
        let metric = metric.expect("constant metric definition");
        let _ = self.0.register(Box::new(metric.clone()));
        metric
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help))
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    fn counter_by(&self, name: &str, help: &str, label: &str) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), &[label]))
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(Histogram::with_opts(opts))
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("flowgate".into()), None).unwrap_or_default();
        let r = Register(&registry);
        Metrics {
            sse_open: r.gauge("sse_connections", "Open SSE responses"),
            long_polls_waiting: r.gauge("long_polls_waiting", "Long-polls waiting"),
            records_appended: r.counter(
                "records_appended_total",
                "Records appended through this process",
            ),
            records_delivered: r.counter("records_delivered_total", "Records delivered to readers"),
            events_set: r.counter("events_set_total", "Events set through this process"),
            events_delivered: r.counter("events_delivered_total", "Events delivered to readers"),
            messages_sent: r.counter("messages_sent_total", "Messages sent through this process"),
            notes_published: r.counter_by(
                "notes_published_total",
                "Notes published, by kind",
                "kind",
            ),
            delivery_seconds: r.histogram(
                "delivery_seconds",
                "Wake-up reaching the hub to record reaching a subscriber",
                DELIVERY_BUCKETS,
            ),
            commit_batch_writes: r.histogram(
                "commit_batch_writes",
                "Writes committed together by the group committer, per batch",
                BATCH_BUCKETS,
            ),
            step_seconds: r.histogram("step_seconds", "Durations of workflow steps", STEP_BUCKETS),
            lagged: r.counter(
                "subscriber_lag_total",
                "Slow subscribers that fell back to the database",
            ),
            stream_reads: r.counter(
                "stream_fetcher_reads_total",
                "Database reads by stream fetchers after a wake-up",
            ),
            sse_rejected: r.counter("sse_rejected_total", "SSE connections refused at the limit"),
            run_feed_reads: r.counter(
                "run_feed_reads_total",
                "Reads of the run change feed (one per change per process, plus catch-ups)",
            ),
            connections_open: r.gauge("connections_open", "Open client connections"),
            connections_refused: r.counter_by(
                "connections_refused_total",
                "Connections refused or closed by a bound, by reason",
                "reason",
            ),
            listener_reconnects: r.gauge("listener_reconnects", "Listener reconnects"),
            listener_connected: r.gauge("listener_connected", "1 while LISTEN is active"),
            pool_size: r.gauge("db_pool_connections", "Database pool connections"),
            pool_idle: r.gauge("db_pool_idle", "Idle database pool connections"),
            hub_topics: r.gauge("hub_topics", "Live hub topics"),
            gc_rows_deleted: r.counter_by(
                "gc_rows_deleted_total",
                "Rows the retention sweeper deleted, by table",
                "table",
            ),
            gc_sweep_seconds: r.histogram(
                "gc_sweep_seconds",
                "Durations of retention sweeps",
                SWEEP_BUCKETS,
            ),
            http_panics: r.counter(
                "http_panics_total",
                "Handlers or response streams that panicked",
            ),
            registry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
