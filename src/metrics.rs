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

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("flowgate".into()), None).unwrap_or_default();
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("constant metric definition");
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("constant metric definition");
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let notes_published = IntCounterVec::new(
            Opts::new("notes_published_total", "Notes published, by kind"),
            &["kind"],
        )
        .expect("constant metric definition");
        let _ = registry.register(Box::new(notes_published.clone()));
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "connections_refused_total",
                "Connections refused or closed by a bound, by reason",
            ),
            &["reason"],
        )
        .expect("constant metric definition");
        let _ = registry.register(Box::new(connections_refused.clone()));
        let buckets = vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "delivery_seconds",
                "Wake-up reaching the hub to record reaching a subscriber",
            )
            .buckets(buckets),
        )
        .expect("constant metric definition");
        let _ = registry.register(Box::new(delivery_seconds.clone()));
        let step_seconds = Histogram::with_opts(
            HistogramOpts::new("step_seconds", "Durations of workflow steps").buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0,
            ]),
        )
        .expect("constant metric definition");
        let _ = registry.register(Box::new(step_seconds.clone()));
        let gc_rows_deleted = IntCounterVec::new(
            Opts::new(
                "gc_rows_deleted_total",
                "Rows the retention sweeper deleted, by table",
            ),
            &["table"],
        )
        .expect("constant metric definition");
        let _ = registry.register(Box::new(gc_rows_deleted.clone()));
        let gc_sweep_seconds = Histogram::with_opts(
            HistogramOpts::new("gc_sweep_seconds", "Durations of retention sweeps").buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0,
            ]),
        )
        .expect("constant metric definition");
        let _ = registry.register(Box::new(gc_sweep_seconds.clone()));
        Metrics {
            gc_rows_deleted,
            gc_sweep_seconds,
            step_seconds,
            sse_open: gauge("sse_connections", "Open SSE responses"),
            long_polls_waiting: gauge("long_polls_waiting", "Long-polls waiting"),
            records_appended: counter(
                "records_appended_total",
                "Records appended through this process",
            ),
            records_delivered: counter("records_delivered_total", "Records delivered to readers"),
            events_set: counter("events_set_total", "Events set through this process"),
            events_delivered: counter("events_delivered_total", "Events delivered to readers"),
            messages_sent: counter("messages_sent_total", "Messages sent through this process"),
            lagged: counter(
                "subscriber_lag_total",
                "Slow subscribers that fell back to the database",
            ),
            stream_reads: counter(
                "stream_fetcher_reads_total",
                "Database reads by stream fetchers after a wake-up",
            ),
            sse_rejected: counter("sse_rejected_total", "SSE connections refused at the limit"),
            run_feed_reads: counter(
                "run_feed_reads_total",
                "Reads of the run change feed (one per change per process, plus catch-ups)",
            ),
            listener_reconnects: gauge("listener_reconnects", "Listener reconnects"),
            listener_connected: gauge("listener_connected", "1 while LISTEN is active"),
            pool_size: gauge("db_pool_connections", "Database pool connections"),
            pool_idle: gauge("db_pool_idle", "Idle database pool connections"),
            hub_topics: gauge("hub_topics", "Live hub topics"),
            http_panics: counter(
                "http_panics_total",
                "Handlers or response streams that panicked",
            ),
            connections_open: gauge("connections_open", "Open client connections"),
            connections_refused,
            notes_published,
            delivery_seconds,
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
