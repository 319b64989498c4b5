//! Write throughput over HTTP — stream appends (1, 8 and 64 writers, batches, with 0 and 100
//! live SSE readers), event sets and message sends — each beside pgbench doing the same row
//! work in SQL against the same database in the same run, with the commits each write cost.
//!
//! Commits are counted with `pg_stat_database.xact_commit` (see [`super::queries`] for why
//! the counter is read only after the database has been quiet for `settle` seconds).

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::pgbench::{self, Script};
use super::{Bench, Row};

/// What an HTTP writer sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `POST …/streams/s{w % streams}` with `batch` records.
    Append { streams: usize, batch: usize },
    /// `PUT …/events/k` on run `{run}-{w}`.
    Event,
    /// `POST …/messages` to run `{run}-{w}`.
    Message,
}

/// One table row: an HTTP scenario and the pgbench script it is compared with.
struct Scenario {
    what: &'static str,
    kind: Kind,
    writers: usize,
    subs: usize,
    base: Option<(Script, usize)>,
}

fn scenarios() -> Vec<Scenario> {
    use Script::{AppendQuiet, Send, SendQuiet, SetEvent, SetEventQuiet, WriteStream};
    let one = Kind::Append {
        streams: 8,
        batch: 1,
    };
    let big = Kind::Append {
        streams: 8,
        batch: 1000,
    };
    #[rustfmt::skip]
    let table = [
        ("stream 1 writer", one, 1, 0, Some((WriteStream, 1))),
        ("stream 8 writers, 8 streams", one, 8, 0, Some((AppendQuiet(8), 8))),
        ("stream 64 writers, 8 streams", one, 64, 0, Some((AppendQuiet(8), 64))),
        ("stream 1 writer, 1000-record batches", big, 1, 0, None),
        ("stream 1 writer", one, 1, 100, Some((WriteStream, 1))),
        ("stream 8 writers, 8 streams", one, 8, 100, Some((AppendQuiet(8), 8))),
        ("event 1 writer", Kind::Event, 1, 0, Some((SetEvent, 1))),
        ("event 8 writers, 8 runs", Kind::Event, 8, 0, Some((SetEventQuiet, 8))),
        ("message 1 writer", Kind::Message, 1, 0, Some((Send, 1))),
        ("message 8 writers, 8 runs", Kind::Message, 8, 0, Some((SendQuiet, 8))),
    ];
    table
        .into_iter()
        .map(|(what, kind, writers, subs, base)| Scenario {
            what,
            kind,
            writers,
            subs,
            base,
        })
        .collect()
}

/// Runs every throughput measurement.
pub async fn run(bench: &Bench, seconds: f64, settle: f64) -> anyhow::Result<Vec<Row>> {
    let dur = Duration::from_secs_f64(seconds);
    let settle = Duration::from_secs_f64(settle);
    let mut rows = Vec::new();
    pgbench::prepare(bench).await?;
    for sc in scenarios() {
        // The baseline runs just before and just after its row, so that both see the same
        // machine (it is shared and its load drifts); the row compares with their mean.
        let before = baseline(bench, &sc, seconds).await;
        let (rate, per) = measure(bench, &sc, dur, settle).await?;
        let after = baseline(bench, &sc, seconds).await;
        let base = match (before, after) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        };
        rows.push(row(&sc, rate, base, per));
    }
    Ok(rows)
}

async fn baseline(bench: &Bench, sc: &Scenario, seconds: f64) -> Option<f64> {
    let (script, clients) = sc.base?;
    pgbench::tps(bench, script, clients, seconds).await
}

/// Runs one scenario's HTTP writers; returns (writes per second, commits per write).
async fn measure(
    bench: &Bench,
    sc: &Scenario,
    dur: Duration,
    settle: Duration,
) -> anyhow::Result<(f64, f64)> {
    let run = format!("tp-{}", rand::random::<u32>());
    for w in 0..sc.writers.max(1) {
        bench.create_run(&format!("{run}-{w}")).await?;
    }
    bench.create_run(&run).await?;
    let readers = subscribe(bench, &run, sc.subs, 8).await?;
    tokio::time::sleep(settle).await;
    let before = bench.xact_commits().await?;
    let (rate, writes) = closed_loop(bench, &run, sc.kind, sc.writers, dur).await?;
    readers.iter().for_each(|r| r.abort());
    tokio::time::sleep(settle).await;
    let commits = (bench.xact_commits().await? - before - 1) as f64;
    Ok((rate, commits / writes.max(1) as f64))
}

fn row(sc: &Scenario, rate: f64, base: Option<f64>, commits: f64) -> Row {
    let ratio = base.filter(|b| *b > 0.0).map(|b| rate / b);
    let base_name = sc
        .base
        .map(|(s, c)| format!("pgbench -c {c} {}", s.describe()))
        .unwrap_or_default();
    let (what, subs) = (sc.what, sc.subs);
    let mut line =
        format!("write    {what:<38} subs={subs:<4} {rate:>8.0} /s  {commits:>5.2} commits/write");
    if let (Some(b), Some(r)) = (base, ratio) {
        line += &format!("   {base_name}: {b:.0}/s   ratio {r:.2}");
    }
    let json = json!({"scenario": "write", "what": what, "subscribers": subs,
                      "writes_per_s": rate.round(), "commits_per_write": commits,
                      "baseline": base_name, "baseline_per_s": base.map(f64::round), "ratio": ratio});
    (line, json)
}

/// Opens `n` SSE readers spread over `streams` streams of `run` that just drain.
async fn subscribe(
    bench: &Bench,
    run: &str,
    n: usize,
    streams: usize,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut out = Vec::new();
    for i in 0..n {
        let url = bench.url(&format!("/v1/workflows/{run}/streams/s{}", i % streams));
        let resp = bench.http.get(url).send().await?;
        out.push(tokio::spawn(async move {
            let mut ev = resp.bytes_stream().eventsource();
            while let Some(Ok(_)) = ev.next().await {}
        }));
    }
    Ok(out)
}

/// `writers` concurrent closed-loop writers for `dur`; returns (records or writes per
/// second, requests made).
async fn closed_loop(
    bench: &Bench,
    run: &str,
    kind: Kind,
    writers: usize,
    dur: Duration,
) -> anyhow::Result<(f64, usize)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let http = bench.http.clone();
        let (method, url, per) = match kind {
            Kind::Append { streams, batch } => (
                reqwest::Method::POST,
                bench.url(&format!("/v1/workflows/{run}/streams/s{}", w % streams)),
                batch,
            ),
            Kind::Event => (
                reqwest::Method::PUT,
                bench.url(&format!("/v1/workflows/{run}-{w}/events/k")),
                1,
            ),
            Kind::Message => (
                reqwest::Method::POST,
                bench.url(&format!("/v1/workflows/{run}-{w}/messages")),
                1,
            ),
        };
        tasks.push(tokio::spawn(async move {
            let (mut records, mut requests) = (0usize, 0usize);
            while start.elapsed() < dur {
                let body = body(kind, requests);
                let r = http
                    .request(method.clone(), &url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "write: {}", r.status());
                records += per;
                requests += 1;
            }
            anyhow::Ok((records, requests))
        }));
    }
    let (mut records, mut requests) = (0, 0);
    for t in tasks {
        let (a, b) = t.await??;
        records += a;
        requests += b;
    }
    Ok((records as f64 / start.elapsed().as_secs_f64(), requests))
}

fn body(kind: Kind, i: usize) -> Vec<u8> {
    let v = match kind {
        Kind::Append { batch, .. } => Value::Array(
            (0..batch)
                .map(|j| json!({"i": i * batch + j, "text": "token"}))
                .collect(),
        ),
        Kind::Event => json!({"i": i, "text": "token"}),
        Kind::Message => json!({"topic": "t", "body": {"i": i, "text": "token"}}),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}
