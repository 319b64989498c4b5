//! The `durable` scenario: the Durable Streams table (POST, SSE and long-poll latency,
//! appends per second with 1 and 8 in flight on one stream, delivery to many readers) for
//! flowgate and, unless `--smoke` or `--no-ds-reference`, the Node reference server
//! file-backed and in memory, in one run; plus flowgate's own workflow-stream append rate
//! with 1 in flight, the target for the protocol's path.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::ds::{self, Params, Results};
use super::ds_reference::Reference;
use super::{Bench, Row};

/// Runs the scenario; returns the printed lines with their JSON.
pub async fn run(bench: &Bench, smoke: bool, reference: bool) -> anyhow::Result<Vec<Row>> {
    let p = if smoke {
        Params {
            appends: 20,
            spacing: Duration::from_millis(5),
            tput: Duration::from_millis(300),
            readers: 10,
            fan_appends: 5,
        }
    } else {
        Params {
            appends: 500,
            spacing: Duration::from_millis(10),
            tput: Duration::from_secs(10),
            readers: 1000,
            fan_appends: 100,
        }
    };
    let mut results = vec![ds::measure("flowgate", &bench.base, &p).await?];
    let mut rows = Vec::new();
    if reference && !smoke {
        for (name, durable) in [
            ("reference, file-backed", true),
            ("reference, in memory", false),
        ] {
            match Reference::start(&bench.http, durable).await {
                Ok(r) => {
                    let m = ds::measure(name, &r.base, &p).await;
                    drop(r);
                    results.push(m?);
                }
                Err(e) => rows.push((
                    format!("{name}: not measured ({e:#})"),
                    json!({"scenario": "durable streams", "server": name, "error": e.to_string()}),
                )),
            }
        }
    }
    let wf = workflow_rate(bench, p.tput).await?;
    let mut lines = table(&results, p.readers);
    lines.push(format!(
        "workflow-stream append over HTTP, 1 in flight (flowgate): {wf:.0}/s"
    ));
    let mut json: Vec<Value> = results.iter().map(Results::json).collect();
    json.push(json!({"scenario": "workflow stream append", "in_flight": 1, "per_s": wf.round()}));
    rows.insert(0, (lines.join("\n"), Value::Array(json)));
    Ok(rows)
}

/// The table, one column per server.
fn table(results: &[Results], readers: usize) -> Vec<String> {
    let pair = |a: f64, b: f64| format!("{a:.2} / {b:.2}");
    let rate = |r: f64| format!("{r:.0}");
    type Cell = Box<dyn Fn(&Results) -> String>;
    let rows: Vec<(String, Cell)> = vec![
        (
            "POST p50 / p99 ms".into(),
            Box::new(move |r| pair(r.post.p50, r.post.p99)),
        ),
        (
            "SSE delivery p50 / p99 ms".into(),
            Box::new(move |r| pair(r.sse.p50, r.sse.p99)),
        ),
        (
            "long-poll delivery p50 / p99 ms".into(),
            Box::new(move |r| pair(r.long_poll.p50, r.long_poll.p99)),
        ),
        (
            "appends/s, 1 in flight".into(),
            Box::new(move |r| rate(r.tput1)),
        ),
        (
            "appends/s, 8 in flight, one stream".into(),
            Box::new(move |r| rate(r.tput8)),
        ),
        (
            format!("{readers} readers, delivery to all p50 / p99 ms"),
            Box::new(move |r| {
                let missing = if r.fan_missing > 0 {
                    format!(" ({} missing)", r.fan_missing)
                } else {
                    String::new()
                };
                format!("{}{missing}", pair(r.fan.p50, r.fan.p99))
            }),
        ),
    ];
    let mut out = vec![format!(
        "{:<44}{}",
        "durable streams (one text/plain stream)",
        results
            .iter()
            .map(|r| format!("{:>26}", r.name))
            .collect::<String>()
    )];
    for (label, cell) in rows {
        let cells: String = results.iter().map(|r| format!("{:>26}", cell(r))).collect();
        out.push(format!("{label:<44}{cells}"));
    }
    out
}

/// Workflow-stream appends per second over HTTP with 1 in flight (one 32-byte record each).
async fn workflow_rate(bench: &Bench, dur: Duration) -> anyhow::Result<f64> {
    let run = format!("ds-wf-{}", rand::random::<u32>());
    bench.create_run(&run).await?;
    let url = bench.url(&format!("/v1/workflows/{run}/streams/s"));
    let body = format!("[\"{}\"]", "x".repeat(28));
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "workflow append: {}", r.status());
        r.bytes().await?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
