//! Append throughput over HTTP (one writer, eight writers on eight streams, batches), with
//! 0 and 100 live subscribers, beside pgbench running the same row work in SQL against the
//! same database.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::Bench;

type Row = (String, Value);

/// Runs every throughput measurement.
pub async fn run(bench: &Bench, seconds: f64) -> anyhow::Result<Vec<Row>> {
    let dur = Duration::from_secs_f64(seconds);
    let mut rows = Vec::new();
    let pg1 = pgbench(bench, 1, false, seconds).await;
    let pg8 = pgbench(bench, 8, false, seconds).await;
    let pg8n = pgbench(bench, 8, true, seconds).await;
    for subs in [0usize, 100] {
        let run = format!("tp-{subs}-{}", rand::random::<u32>());
        bench.create_run(&run).await?;
        let readers = subscribe(bench, &run, subs, 8).await?;
        let one = http_appends(bench, &run, 1, 1, dur).await?;
        rows.push(row(
            "http 1 writer, 1 record/txn",
            subs,
            one,
            pg1,
            "pgbench -c 1 (same row work)",
        ));
        let eight = http_appends(bench, &run, 8, 1, dur).await?;
        rows.push(row(
            "http 8 writers on 8 streams",
            subs,
            eight,
            pg8,
            "pgbench -c 8 without NOTIFY",
        ));
        rows.push(row(
            "  (for scale) pgbench -c 8 with NOTIFY in txn",
            subs,
            pg8n.unwrap_or(0.0),
            pg8,
            "pgbench -c 8 without NOTIFY",
        ));
        let batched = http_appends(bench, &run, 1, 1000, dur).await?;
        rows.push(row(
            "http 1 writer, 1000-record batches",
            subs,
            batched,
            None,
            "",
        ));
        readers.iter().for_each(|r| r.abort());
    }
    Ok(rows)
}

fn row(what: &str, subs: usize, rate: f64, base: Option<f64>, base_name: &str) -> Row {
    let ratio = base.filter(|b| *b > 0.0).map(|b| rate / b);
    let line = match (base, ratio) {
        (Some(b), Some(r)) => {
            format!("append   {what:<44} subs={subs:<4} {rate:>9.0} records/s   {base_name}: {b:.0}/s   ratio {r:.2}")
        }
        _ => format!("append   {what:<44} subs={subs:<4} {rate:>9.0} records/s"),
    };
    let json = json!({"scenario": "append", "what": what, "subscribers": subs, "records_per_s": rate.round(),
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

/// `writers` concurrent writers, each on its own stream, appending `batch` records per
/// request for `dur`; returns records/s.
async fn http_appends(
    bench: &Bench,
    run: &str,
    writers: usize,
    batch: usize,
    dur: Duration,
) -> anyhow::Result<f64> {
    let body: Vec<Value> = (0..batch)
        .map(|i| json!({"i": i, "text": "token"}))
        .collect();
    let body = serde_json::to_vec(&body)?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let http = bench.http.clone();
        let url = bench.url(&format!("/v1/workflows/{run}/streams/s{w}"));
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while start.elapsed() < dur {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "append: {}", r.status());
                n += batch;
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

/// pgbench with `clients` clients, one append per transaction on a stream per client,
/// through `write_stream` (NOTIFY in the transaction) or `append_quiet` (no NOTIFY).
async fn pgbench(bench: &Bench, clients: usize, notify: bool, seconds: f64) -> Option<f64> {
    let bin = crate::private_pg::find_bindir()?.join("pgbench");
    sqlx::query("SELECT flowgate.ensure_run('pgbench', 'bench')")
        .execute(&bench.pool)
        .await
        .ok()?;
    let sql = if notify {
        "SELECT flowgate.write_stream('pgbench', 'n' || :client_id, '{\"i\": 1, \"text\": \"token\"}'::jsonb);\n"
    } else {
        "SELECT flowgate.append_quiet('pgbench', 'q' || :client_id, ARRAY[convert_to('{\"i\":1,\"text\":\"token\"}', 'UTF8')]);\n"
    };
    let script =
        std::env::temp_dir().join(format!("flowgate-pgbench-{}.sql", rand::random::<u32>()));
    std::fs::write(&script, sql).ok()?;
    let out = tokio::process::Command::new(bin)
        .args(["-n", "-f"])
        .arg(&script)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &seconds.ceil().max(1.0).to_string(),
        ])
        .arg(&bench.db_url)
        .output()
        .await
        .ok()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| {
            l.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}
