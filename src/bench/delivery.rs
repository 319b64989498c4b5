//! Commit → SSE delivery latency: one writer appends records at a fixed pace while N SSE
//! subscribers read them. Latency is receive time minus the time just before the append was
//! issued (so it includes the commit itself, as the DBOS harness measures).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::stats::Summary;
use super::Bench;

/// How records are written.
#[derive(Debug, Clone, Copy)]
pub enum Writer {
    /// `POST …/streams/{key}`: this process's own write, woken locally.
    Http,
    /// `SELECT flowgate.write_stream(…)` on another connection: woken through LISTEN/NOTIFY.
    Sql,
}

/// One delivery run's outcome.
pub struct DeliveryResult {
    writer: Writer,
    subscribers: usize,
    expected: usize,
    received: usize,
    duplicates_or_gaps: usize,
    latency: Summary,
}

impl DeliveryResult {
    /// A table line.
    pub fn line(&self) -> String {
        format!(
            "delivery {:<5} subs={:<5} p50/p95/p99/max ms {}  received {}/{}  out-of-order {}",
            format!("{:?}", self.writer).to_lowercase(),
            self.subscribers,
            self.latency.cells(),
            self.received,
            self.expected,
            self.duplicates_or_gaps
        )
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "scenario": "delivery",
            "writer": format!("{:?}", self.writer).to_lowercase(),
            "subscribers": self.subscribers,
            "expected": self.expected,
            "received": self.received,
            "duplicates_or_gaps": self.duplicates_or_gaps,
            "latency": self.latency.json(),
        })
    }
}

/// When each record's append was issued, in nanoseconds since the run's start.
#[derive(Clone)]
struct SendTimes {
    start: Instant,
    at: Arc<Vec<AtomicU64>>,
}

impl SendTimes {
    fn new(records: usize) -> SendTimes {
        SendTimes {
            start: Instant::now(),
            at: Arc::new((0..records).map(|_| AtomicU64::new(0)).collect()),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Notes that record `i` is being appended now.
    fn mark(&self, i: usize) {
        self.at[i].store(self.now(), Ordering::Relaxed);
    }

    /// Milliseconds from record `off`'s append to now, if it is one of ours.
    fn latency_ms(&self, off: usize) -> Option<f64> {
        let sent = self.at.get(off)?.load(Ordering::Relaxed);
        Some(self.now().saturating_sub(sent) as f64 / 1e6)
    }
}

/// Runs one delivery measurement.
pub async fn run(
    bench: &Bench,
    writer: Writer,
    subscribers: usize,
    records: usize,
    rate: f64,
) -> anyhow::Result<DeliveryResult> {
    let run_id = format!(
        "delivery-{}-{:?}-{}",
        subscribers,
        writer,
        rand::random::<u32>()
    );
    bench.create_run(&run_id).await?;
    let url = bench.url(&format!("/v1/workflows/{run_id}/streams/s"));
    let times = SendTimes::new(records);
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let resp = bench.subscribe(&url).await?;
        readers.push(tokio::spawn(read(resp, times.clone(), records)));
    }
    // Let every subscriber finish its catch-up before writing.
    tokio::time::sleep(Duration::from_millis(200 + subscribers as u64)).await;
    write(bench, writer, &run_id, &url, &times, rate).await?;
    bench.http.post(format!("{url}/close")).send().await?;
    let mut all = Vec::new();
    let mut bad = 0;
    let mut received = 0;
    for r in readers {
        let (lat, b) = r.await?;
        received += lat.len();
        bad += b;
        all.extend(lat);
    }
    Ok(DeliveryResult {
        writer,
        subscribers,
        expected: records * subscribers,
        received,
        duplicates_or_gaps: bad,
        latency: Summary::of(&mut all),
    })
}

/// One subscriber: reads until the stream ends (or is silent for 30 s); returns the
/// latencies seen and how many records came out of order.
async fn read(resp: reqwest::Response, times: SendTimes, records: usize) -> (Vec<f64>, usize) {
    let mut events = resp.bytes_stream().eventsource();
    let mut lat = Vec::with_capacity(records);
    let mut bad = 0usize;
    let mut expect = 0usize;
    while let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_secs(30), events.next()).await
    {
        if ev.event == "end" {
            break;
        }
        let off: usize = ev.id.parse().unwrap_or(usize::MAX);
        if off != expect {
            bad += 1;
        }
        expect = off.saturating_add(1);
        lat.extend(times.latency_ms(off));
    }
    (lat, bad)
}

/// Appends every record at `rate` per second, noting when each was issued.
async fn write(
    bench: &Bench,
    writer: Writer,
    run_id: &str,
    url: &str,
    times: &SendTimes,
    rate: f64,
) -> anyhow::Result<()> {
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut tick = tokio::time::interval(period);
    for i in 0..times.at.len() {
        tick.tick().await;
        times.mark(i);
        match writer {
            Writer::Http => {
                bench.append(url, &json!([{"i": i}])).await?;
            }
            Writer::Sql => {
                bench
                    .store
                    .write_stream_sql(run_id, &json!({"i": i}))
                    .await?;
            }
        }
    }
    Ok(())
}
