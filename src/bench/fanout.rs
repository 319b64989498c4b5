//! Fan-out: many concurrent SSE connections on one stream, a steady writer at 10 records/s,
//! against flowgate and (with `--nchan`) Nchan in the same run with the same client: every
//! connection must get every record; reported are the delivery latency (all deliveries, and
//! per record the last reader), server memory per idle connection and server CPU per
//! delivered event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::stats::Summary;
use super::Bench;

/// A server under test: where readers subscribe, how a record is published, which
/// processes to measure.
pub struct Target {
    /// `flowgate` or `nchan`.
    pub name: &'static str,
    /// The SSE address readers open.
    pub sub_url: String,
    /// Where a record is POSTed.
    pub pub_url: String,
    /// True if the POST body is a JSON array of records (flowgate), else the record itself.
    pub array: bool,
    /// Server processes (memory and CPU are summed over them).
    pub pids: Vec<u32>,
}

/// The flowgate target: a fresh run's stream `s` on the bench server.
pub async fn flowgate(bench: &Bench) -> anyhow::Result<Target> {
    let run = format!("fanout-{}", rand::random::<u32>());
    bench.create_run(&run).await?;
    let url = bench.url(&format!("/v1/workflows/{run}/streams/s"));
    Ok(Target {
        name: "flowgate",
        sub_url: url.clone(),
        pub_url: url,
        array: true,
        pids: bench.server_pid().into_iter().collect(),
    })
}

fn rss(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|p| crate::http::health::rss_of(&p.to_string()))
        .sum()
}

/// User + system CPU seconds of `pids` so far.
fn cpu_secs(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// `conns` readers on `t`; 10 records/s for `seconds`.
pub async fn run(
    http: &reqwest::Client,
    t: &Target,
    conns: usize,
    seconds: f64,
) -> anyhow::Result<(String, Value)> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss(&t.pids);
    let records = ((seconds * 10.0).round() as usize).max(1);
    let start = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..records).map(|_| AtomicU64::new(0)).collect());
    let mut readers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let req = http.get(&t.sub_url).header("accept", "text/event-stream");
        let Ok(resp) = req.send().await else { continue };
        if resp.status() != 200 {
            continue;
        }
        let sent = sent.clone();
        readers.push(tokio::spawn(read(resp, sent, start, records)));
    }
    let opened = readers.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss(&t.pids);
    let cpu_start = cpu_secs(&t.pids);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for (i, slot) in sent.iter().enumerate() {
        tick.tick().await;
        slot.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let body = if t.array {
            json!([{ "i": i }])
        } else {
            json!({ "i": i })
        };
        http.post(&t.pub_url).json(&body).send().await?;
    }
    let rss_busy = rss(&t.pids);
    let mut all = Vec::new();
    let mut last = vec![0f64; records];
    let mut complete = 0usize;
    for r in readers {
        let lat = r.await?;
        if lat.iter().all(|l| l.is_some()) {
            complete += 1;
        }
        for (i, l) in lat.into_iter().enumerate() {
            if let Some(l) = l {
                all.push(l);
                last[i] = last[i].max(l);
            }
        }
    }
    let cpu = cpu_secs(&t.pids) - cpu_start;
    let delivered = all.len();
    let s = Summary::of(&mut all);
    let l = Summary::of(&mut last);
    let per_conn = rss_idle.saturating_sub(rss_before) as f64 / opened.max(1) as f64;
    let cpu_us = cpu * 1e6 / delivered.max(1) as f64;
    let line = format!(
        "fanout   {:<8} {opened} SSE conns, {records} records, complete {complete}/{opened}  delivery p50/p95/p99/max ms {}  last reader p50/p99 {:.1}/{:.1} ms  {:.1} KiB per idle conn  {cpu_us:.2} µs CPU per delivered event",
        t.name, s.cells(), l.p50, l.p99, per_conn / 1024.0
    );
    let json = json!({"scenario": "fanout", "server": t.name, "connections": opened, "records": records,
        "complete_connections": complete, "latency": s.json(), "last_reader": l.json(),
        "rss_before_mb": rss_before as f64 / 1048576.0, "rss_idle_mb": rss_idle as f64 / 1048576.0,
        "rss_busy_mb": rss_busy as f64 / 1048576.0, "bytes_per_idle_connection": per_conn.round(),
        "cpu_us_per_delivered_event": cpu_us});
    Ok((line, json))
}

/// Reads one connection until every record arrived (or a minute of silence); the latency
/// of each record in ms, `None` for a missing or out-of-order one.
async fn read(
    resp: reqwest::Response,
    sent: Arc<Vec<AtomicU64>>,
    start: Instant,
    records: usize,
) -> Vec<Option<f64>> {
    let mut ev = resp.bytes_stream().eventsource();
    let mut lat = vec![None; records];
    let mut next = 0usize;
    while next < records {
        let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(60), ev.next()).await else {
            break;
        };
        let Some(i) = serde_json::from_str::<Value>(&e.data)
            .ok()
            .and_then(|v| v["i"].as_u64())
            .map(|i| i as usize)
        else {
            continue;
        };
        if i != next {
            break;
        }
        next += 1;
        let now = start.elapsed().as_nanos() as u64;
        if let Some(t) = sent.get(i) {
            lat[i] = Some(now.saturating_sub(t.load(Ordering::Relaxed)) as f64 / 1e6);
        }
    }
    lat
}
