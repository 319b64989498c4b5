//! Retention sweep under live traffic: expired runs holding `records` stream records are
//! swept while one writer appends to a live run over HTTP (closed loop, one record per
//! request) and one SSE reader follows it. Append throughput and delivery latency during
//! the sweep are reported beside the same load without a sweep, just before and just after
//! it (the machine's noise shows in their difference), with the size of `stream_records`
//! before, after, after a plain `VACUUM` (space reusable, file kept) and, for scale, after
//! `VACUUM FULL` (an exclusive lock no live system would take).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::stats::Summary;
use super::Bench;
use crate::lifecycle::{LockMode, RetentionConfig, Sweeper};

/// What one load window measured.
struct Window {
    appends: usize,
    seconds: f64,
    latency: Summary,
}

impl Window {
    fn rate(&self) -> f64 {
        self.appends as f64 / self.seconds.max(1e-9)
    }
}

/// Inserts `runs` finished runs two days old with `per_run` records of about 100 bytes.
async fn load(bench: &Bench, runs: i64, per_run: i64) -> anyhow::Result<()> {
    bench.store.seed_expired_runs(runs, per_run).await?;
    bench.store.analyze_stream_records().await?;
    Ok(())
}

async fn table_mb(bench: &Bench) -> anyhow::Result<f64> {
    let bytes = bench.store.stream_records_bytes().await?;
    Ok(bytes as f64 / 1048576.0)
}

/// Appends to a live run and follows it until `stop` fires (or `max` elapses).
async fn traffic(
    bench: &Bench,
    run: &str,
    stop: CancellationToken,
    max: Duration,
) -> anyhow::Result<Window> {
    let url = bench.url(&format!("/v1/workflows/{run}/streams/live"));
    bench
        .http
        .post(&url)
        .json(&[json!({"warm": true})])
        .send()
        .await?;
    let resp = bench
        .http
        .get(format!("{url}?from=1"))
        .header("accept", "text/event-stream")
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "follow: {}", resp.status());
    let sent: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let reader = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut events = resp.bytes_stream().eventsource();
            while let Ok(Some(Ok(ev))) =
                tokio::time::timeout(Duration::from_secs(10), events.next()).await
            {
                if ev.event == "end" {
                    break;
                }
                if let Some(t) = ev.id.parse().ok().and_then(|o: i64| {
                    let mut m = sent.try_lock().ok()?;
                    m.remove(&o)
                }) {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            lat
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut appends = 0;
    while !stop.is_cancelled() && started.elapsed() < max {
        let t = Instant::now();
        let r = bench.append(&url, &json!([{ "t": appends }])).await?;
        let body: Value = r.json().await?;
        if let Some(o) = body["first_offset"].as_i64() {
            sent.lock().await.insert(o, t);
        }
        appends += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    bench.http.post(format!("{url}/close")).send().await?;
    let mut lat = reader.await?;
    Ok(Window {
        appends,
        seconds,
        latency: Summary::of(&mut lat),
    })
}

/// Runs the scenario: `runs` × `per_run` expired records, a baseline window of `seconds`.
pub async fn run(
    bench: &Bench,
    runs: i64,
    per_run: i64,
    seconds: f64,
) -> anyhow::Result<(String, Value)> {
    let t = Instant::now();
    load(bench, runs, per_run).await?;
    let load_s = t.elapsed().as_secs_f64();
    let before = table_mb(bench).await?;
    for run in ["live-a", "live-b", "live-c"] {
        bench.create_run(run).await?;
    }
    let max = Duration::from_secs_f64(seconds);
    let base = traffic(bench, "live-a", CancellationToken::new(), max).await?;
    let cfg = RetentionConfig {
        retention: Duration::from_secs(86400),
        ..Default::default()
    };
    let sweeper = Sweeper::new(bench.store.pool.clone(), cfg, None);
    let stop = CancellationToken::new();
    let sweep = {
        let (s, stop) = (sweeper.clone(), stop.clone());
        tokio::spawn(async move {
            // Starts once the writer and the reader of the live run are under way.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let r = s.run_once(LockMode::Wait, &CancellationToken::new()).await;
            stop.cancel();
            r
        })
    };
    let during = traffic(bench, "live-b", stop, Duration::from_secs(3600)).await?;
    let report = sweep.await??;
    let base2 = traffic(bench, "live-c", CancellationToken::new(), max).await?;
    let after = table_mb(bench).await?;
    bench.store.vacuum_stream_records(false).await?;
    let vacuumed = table_mb(bench).await?;
    bench.store.vacuum_stream_records(true).await?;
    let full = table_mb(bench).await?;
    let (tp, p99) = (
        during.rate() / ((base.rate() + base2.rate()) / 2.0).max(1e-9),
        during.latency.p99 / ((base.latency.p99 + base2.latency.p99) / 2.0).max(1e-9),
    );
    let line = format!(
        "sweep    {} records of {} expired runs (loaded in {load_s:.1} s) swept in {:.1} s\n\
         sweep    before sweep:  {:>7.0} appends/s  delivery p50/p95/p99/max ms {}\n\
         sweep    during sweep:  {:>7.0} appends/s  delivery p50/p95/p99/max ms {}\n\
         sweep    after sweep:   {:>7.0} appends/s  delivery p50/p95/p99/max ms {}\n\
         sweep    during / mean(before, after): throughput {tp:.2} (target ≥ 0.9)  p99 {p99:.2} (target ≤ 2)\n\
         sweep    stream_records {before:.1} MB before, {after:.1} MB after, {vacuumed:.1} MB after VACUUM, \
         {full:.1} MB after VACUUM FULL",
        report.get("stream_records"),
        report.get("workflows"),
        report.seconds,
        base.rate(),
        base.latency.cells(),
        during.rate(),
        during.latency.cells(),
        base2.rate(),
        base2.latency.cells(),
    );
    let json = json!({
        "scenario": "sweep", "records": report.get("stream_records"), "runs": report.get("workflows"),
        "sweep_s": report.seconds, "load_s": load_s,
        "baseline": {"appends_per_s": base.rate(), "latency": base.latency.json()},
        "baseline_after": {"appends_per_s": base2.rate(), "latency": base2.latency.json()},
        "during": {"appends_per_s": during.rate(), "latency": during.latency.json()},
        "throughput_ratio": tp, "p99_ratio": p99,
        "table_mb": {"before": before, "after": after, "after_vacuum": vacuumed, "after_vacuum_full": full},
    });
    Ok((line, json))
}
