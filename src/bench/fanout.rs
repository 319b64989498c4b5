//! Fan-out: many concurrent SSE connections on one server process, a slow steady writer,
//! and the checks that matter: every connection gets every record, the delivery tail, and
//! the server's memory per idle connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::stats::Summary;
use super::Bench;

/// `conns` SSE connections on one stream; 10 records/s for `seconds`.
pub async fn run(bench: &Bench, conns: usize, seconds: f64) -> anyhow::Result<(String, Value)> {
    let run = format!("fanout-{}", rand::random::<u32>());
    bench.create_run(&run).await?;
    let url = bench.url(&format!("/v1/workflows/{run}/streams/s"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = bench.server_rss();
    let records = ((seconds * 10.0).round() as usize).max(1);
    let start = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..records).map(|_| AtomicU64::new(0)).collect());
    let mut readers = Vec::with_capacity(conns);
    let mut opened = 0usize;
    for _ in 0..conns {
        let Ok(resp) = bench.http.get(&url).send().await else {
            continue;
        };
        if resp.status() != 200 {
            continue;
        }
        opened += 1;
        let sent = sent.clone();
        readers.push(tokio::spawn(async move {
            let mut ev = resp.bytes_stream().eventsource();
            let mut lat = Vec::with_capacity(records);
            let mut next = 0usize;
            let mut in_order = true;
            while let Ok(Some(Ok(e))) =
                tokio::time::timeout(Duration::from_secs(60), ev.next()).await
            {
                if e.event == "end" {
                    break;
                }
                let off: usize = e.id.parse().unwrap_or(usize::MAX);
                in_order &= off == next;
                next = off.saturating_add(1);
                let now = start.elapsed().as_nanos() as u64;
                if let Some(t) = sent.get(off) {
                    lat.push(now.saturating_sub(t.load(Ordering::Relaxed)) as f64 / 1e6);
                }
            }
            (lat, in_order)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = bench.server_rss();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for (i, slot) in sent.iter().enumerate() {
        tick.tick().await;
        slot.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        bench
            .http
            .post(&url)
            .json(&[json!({"i": i})])
            .send()
            .await?;
    }
    let rss_busy = bench.server_rss();
    bench.http.post(format!("{url}/close")).send().await?;
    let mut lat = Vec::new();
    let mut complete = 0usize;
    for r in readers {
        let (l, in_order) = r.await?;
        if l.len() == records && in_order {
            complete += 1;
        }
        lat.extend(l);
    }
    let s = Summary::of(&mut lat);
    let per_conn = rss_idle.saturating_sub(rss_before) as f64 / opened.max(1) as f64;
    let line = format!(
        "fanout   {opened} SSE conns, {records} records  every record to every conn: {complete}/{opened}  p50/p95/p99/max ms {}  RSS {:.1} → {:.1} (idle) → {:.1} MB (busy), {:.1} KiB per idle conn",
        s.cells(),
        rss_before as f64 / 1048576.0,
        rss_idle as f64 / 1048576.0,
        rss_busy as f64 / 1048576.0,
        per_conn / 1024.0
    );
    let json = json!({"scenario": "fanout", "connections": opened, "records": records, "complete_connections": complete,
        "latency": s.json(), "rss_before_mb": rss_before as f64 / 1048576.0, "rss_idle_mb": rss_idle as f64 / 1048576.0,
        "rss_busy_mb": rss_busy as f64 / 1048576.0, "bytes_per_idle_connection": per_conn.round()});
    Ok((line, json))
}
