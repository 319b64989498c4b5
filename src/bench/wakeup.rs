//! Wake-up latency: a long-poll waiting on an event returns when a newer version commits.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::stats::Summary;
use super::Bench;

/// `set_event` (HTTP PUT) → the waiting long-poll returns, `trials` times in a row.
pub async fn event_wakeup(bench: &Bench, trials: usize) -> anyhow::Result<(String, Value)> {
    let run = format!("wakeup-{}", rand::random::<u32>());
    bench.create_run(&run).await?;
    let mut lat = Vec::with_capacity(trials);
    let mut version = 0i64;
    let mut lost = 0usize;
    for i in 0..trials {
        let http = bench.http.clone();
        let url = bench.url(&format!(
            "/v1/workflows/{run}/events/k?after={version}&timeout=2"
        ));
        let waiter = tokio::spawn(async move {
            let r = http.get(url).send().await?;
            let at = Instant::now();
            if r.status() == 204 {
                // Timed out: the wake-up was lost (see BENCHMARKS.md).
                return anyhow::Ok((at, None));
            }
            anyhow::ensure!(r.status() == 200, "event long-poll: {}", r.status());
            let body: Value = r.json().await?;
            anyhow::Ok((at, Some(body)))
        });
        // Give the long-poll time to subscribe before the write.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t0 = Instant::now();
        let r = bench
            .http
            .put(bench.url(&format!("/v1/workflows/{run}/events/k")))
            .json(&json!(i))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "set event: {}", r.status());
        let set: Value = r.json().await?;
        match waiter.await?? {
            (at, Some(_)) => {
                lat.push(at.saturating_duration_since(t0).as_secs_f64() * 1000.0);
            }
            (_, None) => lost += 1,
        }
        version = set["version"].as_i64().unwrap_or(version);
    }
    let s = Summary::of(&mut lat);
    Ok((
        format!(
            "wakeup   event long-poll          p50/p95/p99/max ms {}  (timed out: {lost})",
            s.cells()
        ),
        json!({"scenario": "event_wakeup", "latency": s.json(), "timed_out": lost}),
    ))
}
