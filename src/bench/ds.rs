//! Durable Streams at the protocol level, against flowgate and (when it can be installed)
//! the Node reference server in memory and file-backed, with the same client in the same
//! run. The measurement follows `bench.mjs` of the Durable Streams notes:
//!
//! 1. delivery: one `text/plain` stream with a `live=sse` reader and a `live=long-poll`
//!    reader (echoing the cursor) at its tail; appends on a fixed schedule, each body
//!    `"<i> <send time>\n"`, so a reader's delivery latency is its receive time minus the
//!    send time (one clock, one process); POST latency is request start to response end;
//! 2. throughput: a closed loop of 32-byte appends to one stream with 1, then 8, requests
//!    in flight;
//! 3. fan-out: many SSE readers at the tail of one stream, then appends on a schedule:
//!    every reader's delivery latency for every append.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stats::Summary;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Appends in the delivery phase.
    pub appends: usize,
    /// Their spacing.
    pub spacing: Duration,
    /// Each throughput run's length.
    pub tput: Duration,
    /// SSE readers in the fan-out phase.
    pub readers: usize,
    /// Appends in the fan-out phase (10 ms apart).
    pub fan_appends: usize,
}

/// One server's results.
#[derive(Debug, Clone)]
pub struct Results {
    /// Which server.
    pub name: String,
    /// POST latency in the delivery phase.
    pub post: Summary,
    /// SSE delivery latency.
    pub sse: Summary,
    /// Long-poll delivery latency.
    pub long_poll: Summary,
    /// Appends per second, 1 in flight.
    pub tput1: f64,
    /// Appends per second, 8 in flight on one stream.
    pub tput8: f64,
    /// Fan-out delivery latency, every reader and append.
    pub fan: Summary,
    /// Deliveries expected in the fan-out phase that never arrived.
    pub fan_missing: usize,
}

impl Results {
    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "scenario": "durable streams", "server": self.name,
            "post": self.post.json(), "sse_delivery": self.sse.json(),
            "long_poll_delivery": self.long_poll.json(),
            "appends_per_s_1": self.tput1.round(), "appends_per_s_8": self.tput8.round(),
            "fanout_delivery": self.fan.json(), "fanout_missing": self.fan_missing,
        })
    }
}

/// Milliseconds since `clock`.
fn ms(clock: Instant) -> f64 {
    clock.elapsed().as_secs_f64() * 1000.0
}

/// Parses `"<i> <sent>\n"` lines, recording each index's first delivery.
fn record(text: &str, now: f64, seen: &mut [Option<f64>]) {
    for line in text.lines() {
        let mut it = line.split(' ');
        let (Some(i), Some(t)) = (it.next(), it.next()) else {
            continue;
        };
        if let (Ok(i), Ok(t)) = (i.parse::<usize>(), t.parse::<f64>()) {
            if let Some(slot) = seen.get_mut(i).filter(|s| s.is_none()) {
                *slot = Some(now - t);
            }
        }
    }
}

fn summary(seen: &[Option<f64>]) -> Summary {
    Summary::of(&mut seen.iter().flatten().copied().collect::<Vec<_>>())
}

/// Creates a `text/plain` stream; returns its tail offset.
async fn create(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let r = http
        .put(url)
        .header("content-type", "text/plain")
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "PUT {url}: {}", r.status());
    let tail = r.headers().get("stream-next-offset");
    Ok(tail
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-1")
        .to_string())
}

async fn append(http: &reqwest::Client, url: &str, body: String) -> anyhow::Result<()> {
    let r = http
        .post(url)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "POST {url}: {}", r.status());
    r.bytes().await?;
    Ok(())
}

/// A reader task and what stops it.
struct Reader {
    task: JoinHandle<Vec<Option<f64>>>,
    stop: CancellationToken,
}

impl Reader {
    /// Its deliveries once it has them all, or after `within` (then it is stopped).
    async fn finish(mut self, within: Duration) -> Vec<Option<f64>> {
        if let Ok(r) = tokio::time::timeout(within, &mut self.task).await {
            return r.unwrap_or_default();
        }
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// An SSE reader (`url` holds the offset): signals `ready` at its first control event,
/// records data until it has `n` appends.
fn sse_reader(
    http: reqwest::Client,
    url: String,
    clock: Instant,
    n: usize,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Reader {
    let stop = CancellationToken::new();
    let halt = stop.clone();
    let task = tokio::spawn(async move {
        let mut seen = vec![None; n];
        let Ok(resp) = http.get(&url).send().await else {
            return seen;
        };
        let mut events = resp.bytes_stream().eventsource();
        let mut got = 0;
        while got < n {
            let ev = tokio::select! {
                ev = events.next() => ev,
                _ = halt.cancelled() => break,
            };
            let Some(Ok(ev)) = ev else { break };
            if ev.event == "control" {
                let _ = ready.try_send(());
            } else if ev.event == "data" {
                record(&ev.data, ms(clock), &mut seen);
                got = seen.iter().flatten().count();
            }
        }
        seen
    });
    Reader { task, stop }
}

/// A long-poll reader from `offset`, echoing the cursor, until it has `n` appends or `stop`.
async fn long_poll_reader(
    http: reqwest::Client,
    url: String,
    mut offset: String,
    clock: Instant,
    n: usize,
    stop: CancellationToken,
) -> Vec<Option<f64>> {
    let mut seen = vec![None; n];
    let mut cursor: Option<String> = None;
    while !stop.is_cancelled() && seen.iter().flatten().count() < n {
        let mut q = format!("{url}?offset={offset}&live=long-poll");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let r = tokio::select! {
            r = http.get(&q).send() => r,
            _ = stop.cancelled() => break,
        };
        let Ok(r) = r else { break };
        let h = |k: &str| {
            r.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let (next, cur, status) = (h("stream-next-offset"), h("stream-cursor"), r.status());
        let body = r.text().await.unwrap_or_default();
        if status == 200 {
            record(&body, ms(clock), &mut seen);
        } else if status != 204 {
            break;
        }
        offset = next.unwrap_or(offset);
        cursor = cur.or(cursor);
    }
    seen
}

/// Waits until `at` (sleeping, then yielding for the last millisecond).
async fn wait_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        if d > Duration::from_millis(2) {
            tokio::time::sleep(d - Duration::from_millis(1)).await;
        }
        while Instant::now() < at {
            tokio::task::yield_now().await;
        }
    }
}

/// Phase 1: POST, SSE and long-poll latency.
async fn delivery(base: &str, p: &Params) -> anyhow::Result<(Summary, Summary, Summary)> {
    let url = format!("{base}/v1/stream/bench-lat-{}", rand::random::<u32>());
    let (writer, readers) = (reqwest::Client::new(), reqwest::Client::new());
    let tail = create(&writer, &url).await?;
    let clock = Instant::now();
    let n = p.appends;
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(1);
    let sse = sse_reader(
        readers.clone(),
        format!("{url}?offset={tail}&live=sse"),
        clock,
        n,
        ready_tx,
    );
    tokio::time::timeout(Duration::from_secs(10), ready.recv()).await?;
    let stop = CancellationToken::new();
    let lp = Reader {
        task: tokio::spawn(long_poll_reader(
            readers,
            url.clone(),
            tail,
            clock,
            n,
            stop.clone(),
        )),
        stop,
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut post = Vec::with_capacity(n);
    let t0 = Instant::now() + Duration::from_millis(20);
    for i in 0..n {
        wait_until(t0 + p.spacing * i as u32).await;
        let sent = ms(clock);
        append(&writer, &url, format!("{i} {sent:.3}\n")).await?;
        post.push(ms(clock) - sent);
    }
    let sse = sse.finish(Duration::from_secs(5)).await;
    let lp = lp.finish(Duration::from_secs(5)).await;
    Ok((Summary::of(&mut post), summary(&sse), summary(&lp)))
}

/// Phase 2: appends per second with `inflight` requests in flight on one stream.
pub async fn throughput(url: &str, inflight: usize, dur: Duration) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    create(&http, url).await?;
    let body = format!("{}\n", "x".repeat(31));
    let start = Instant::now();
    let end = start + dur;
    let mut tasks = Vec::new();
    for _ in 0..inflight {
        let (http, url, body) = (http.clone(), url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                append(&http, &url, body.clone()).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Phase 3: `readers` SSE readers at the tail; every reader's delivery of every append.
async fn fan_out(base: &str, p: &Params) -> anyhow::Result<(Summary, usize)> {
    let url = format!("{base}/v1/stream/bench-fan-{}", rand::random::<u32>());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.readers + 8)
        .build()?;
    let tail = create(&http, &url).await?;
    let clock = Instant::now();
    let n = p.fan_appends;
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(p.readers.max(1));
    let readers: Vec<_> = (0..p.readers)
        .map(|_| {
            let sub = format!("{url}?offset={tail}&live=sse");
            sse_reader(http.clone(), sub, clock, n, ready_tx.clone())
        })
        .collect();
    drop(ready_tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut open = 0;
    while open < p.readers && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), ready.recv()).await {
            Ok(Some(())) => open += 1,
            _ => break,
        }
    }
    anyhow::ensure!(
        open == p.readers,
        "only {open} of {} readers opened",
        p.readers
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writer = reqwest::Client::new();
    let t0 = Instant::now() + Duration::from_millis(20);
    for i in 0..n {
        wait_until(t0 + Duration::from_millis(10) * i as u32).await;
        append(&writer, &url, format!("{i} {:.3}\n", ms(clock))).await?;
    }
    let mut all = Vec::with_capacity(n * p.readers);
    let mut missing = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    for r in readers {
        let seen = r
            .finish(deadline.saturating_duration_since(Instant::now()))
            .await;
        missing += seen.iter().filter(|s| s.is_none()).count();
        all.extend(seen.into_iter().flatten());
    }
    Ok((Summary::of(&mut all), missing))
}

/// Every phase against the server at `base`.
pub async fn measure(name: &str, base: &str, p: &Params) -> anyhow::Result<Results> {
    let (post, sse, long_poll) = delivery(base, p).await?;
    let tag = rand::random::<u32>();
    let tput1 = throughput(&format!("{base}/v1/stream/bench-t1-{tag}"), 1, p.tput).await?;
    let tput8 = throughput(&format!("{base}/v1/stream/bench-t8-{tag}"), 8, p.tput).await?;
    let (fan, fan_missing) = fan_out(base, p).await?;
    Ok(Results {
        name: name.to_string(),
        post,
        sse,
        long_poll,
        tput1,
        tput8,
        fan,
        fan_missing,
    })
}
