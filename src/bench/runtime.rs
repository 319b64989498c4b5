//! Workflow-runtime scenarios: message wake-up measured inside a workflow, `/healthz` while
//! CPU-bound workflows run, and no-op workflows/s through a queue with one and two server
//! processes. They drive the hidden `pingpong` and `noop` workflows (`--test-workflows`)
//! and the `progress` demo.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{json, Value};

use super::stats::Summary;
use super::{Bench, Row};
use crate::store::RunStatus;

fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Starts `workflow` with `input` through server `base` (optionally on a queue); its id.
async fn start(
    bench: &Bench,
    base: &str,
    workflow: &str,
    input: Value,
    queue: Option<&str>,
) -> anyhow::Result<String> {
    let r = bench
        .http
        .post(format!("{base}/v1/workflows"))
        .json(&json!({"workflow": workflow, "input": input, "queue": queue}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "start {workflow}: {}", r.status());
    let v: Value = r.json().await?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("start {workflow}: no id"))
}

/// HTTP `POST …/messages` stamped with the wall clock → the workflow's `recv` returns (the
/// workflow reads the clock itself and reports the difference), `trials` times in a row;
/// the next message is sent once the workflow has answered the last one with an event.
pub async fn message_wakeup(bench: &Bench, trials: usize) -> anyhow::Result<Row> {
    let id = start(bench, &bench.base, "pingpong", json!({ "n": trials }), None).await?;
    let mut after = 0i64;
    let mut round_trip = Vec::with_capacity(trials);
    for _ in 0..trials {
        let poll = bench
            .http
            .get(bench.url(&format!(
                "/v1/workflows/{id}/events/pong?after={after}&timeout=10"
            )))
            .send();
        let t0 = Instant::now();
        let send = bench
            .http
            .post(bench.url(&format!("/v1/workflows/{id}/messages")))
            .json(&json!({"topic": "ping", "body": {"t": unix_micros()}}))
            .send();
        let (polled, sent) = tokio::join!(poll, send);
        anyhow::ensure!(sent?.status().is_success(), "send failed");
        let v: Value = polled?.json().await?;
        round_trip.push(t0.elapsed().as_secs_f64() * 1000.0);
        after = v["version"].as_i64().unwrap_or(after);
    }
    let out: Value = bench
        .http
        .get(bench.url(&format!("/v1/workflows/{id}?wait=30")))
        .send()
        .await?
        .json()
        .await?;
    let mut lat: Vec<f64> = out["output"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_i64)
                .map(|us| us as f64 / 1000.0)
                .collect()
        })
        .unwrap_or_default();
    let s = Summary::of(&mut lat);
    let rt = Summary::of(&mut round_trip);
    Ok((
        format!(
            "wakeup   message send → recv      p50/p95/p99/max ms {}  (send → pong event seen by client: p50 {:.2} p99 {:.2})",
            s.cells(),
            rt.p50,
            rt.p99
        ),
        json!({"scenario": "message_wakeup", "latency": s.json(), "round_trip": rt.json()}),
    ))
}

/// User + system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let Some(stat) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
    else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Sequential `GET /healthz` every 20 ms for `seconds` while 5 `progress` workflows run
/// naive `fib(n)` steps on the blocking pool; the server's peak RSS and CPU use meanwhile.
pub async fn responsiveness(bench: &Bench, seconds: f64, fib: u32) -> anyhow::Result<Row> {
    let rss_idle = bench.server_rss();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let input = json!({"steps": 1000, "fib": fib, "pause_ms": 0});
        ids.push(start(bench, &bench.base, "progress", input, None).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cpu0, t0) = (cpu_seconds(bench.server_pid()), Instant::now());
    let mut lat = Vec::new();
    let mut rss_peak = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        let r = bench.http.get(bench.url("/healthz")).send().await?;
        let _ = r.bytes().await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        rss_peak = rss_peak.max(bench.server_rss());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cores = (cpu_seconds(bench.server_pid()) - cpu0) / t0.elapsed().as_secs_f64();
    for id in &ids {
        let _ = bench
            .http
            .post(bench.url(&format!("/v1/workflows/{id}/cancel")))
            .send()
            .await;
    }
    let s = Summary::of(&mut lat);
    Ok((
        format!(
            "health   /healthz, 5 fib({fib}) workflows p50/p95/p99/max ms {}  server CPU {cores:.2} cores, RSS {:.1} MB idle → {:.1} MB peak",
            s.cells(),
            rss_idle as f64 / 1048576.0,
            rss_peak as f64 / 1048576.0
        ),
        json!({"scenario": "healthz_under_cpu_load", "fib": fib, "workflows": 5, "latency": s.json(),
               "server_cpu_cores": cores, "rss_idle_mb": rss_idle as f64 / 1048576.0,
               "rss_peak_mb": rss_peak as f64 / 1048576.0}),
    ))
}

/// `total` no-op workflows enqueued over HTTP on queue `default` (16 slots per process, 16
/// requests in flight, spread over the processes) until all are SUCCESS; workflows/s.
pub async fn queue_throughput(
    bench: &mut Bench,
    total: usize,
    processes: usize,
) -> anyhow::Result<Row> {
    let mut bases = vec![bench.base.clone()];
    for _ in 1..processes {
        bases.push(bench.add_server().await?);
    }
    let tag = format!("q{processes}x{:08x}", rand::random::<u32>());
    let t0 = Instant::now();
    let b: &Bench = bench;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..total)
        .map(|i| {
            let base = bases[i % bases.len()].clone();
            let id = format!("{tag}-{i}");
            async move {
                let r = b
                    .http
                    .post(format!("{base}/v1/workflows"))
                    .json(&json!({"workflow": "noop", "input": {}, "queue": "default", "id": id}))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "enqueue: {}", r.status());
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let enqueued = t0.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = 0i64;
    while Instant::now() < deadline {
        done = bench
            .store
            .count_runs_like(&format!("{tag}-%"), RunStatus::Success)
            .await?;
        if done as usize >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = t0.elapsed().as_secs_f64();
    bench.stop_extra().await;
    let rate = done as f64 / all;
    Ok((
        format!(
            "queue    no-op workflows, {processes} process(es)  {rate:>7.0} workflows/s  ({done}/{total} done in {all:.2} s; enqueued in {enqueued:.2} s)"
        ),
        json!({"scenario": "queue_throughput", "processes": processes, "workflows": total,
               "done": done, "seconds": all, "workflows_per_s": rate.round()}),
    ))
}
