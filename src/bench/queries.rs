//! Database work per delivered record: transactions committed in the bench database while
//! one writer appends records over HTTP to a stream that 1 or 1,000 SSE readers follow.
//!
//! Postgres counts them in `pg_stat_database.xact_commit`, which each backend flushes at
//! most once a second and, when idle, within 10 s; so the counter is read after the
//! database has been quiet for `settle` seconds before and after the writes. Every
//! statement the server runs outside an explicit transaction is its own transaction, so
//! this counts statements plus explicit transactions; the bench's own two reads of the
//! counter are included (2 transactions in all).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::Bench;

/// `records` appends at 100/s with `subscribers` readers; transactions per record.
pub async fn per_record(
    bench: &Bench,
    subscribers: usize,
    records: usize,
    settle: f64,
) -> anyhow::Result<(String, Value)> {
    let run = format!("queries-{subscribers}-{:08x}", rand::random::<u32>());
    bench.create_run(&run).await?;
    let url = bench.url(&format!("/v1/workflows/{run}/streams/s"));
    let got = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let resp = bench.subscribe(&url).await?;
        let got = got.clone();
        readers.push(tokio::spawn(async move {
            let mut ev = resp.bytes_stream().eventsource();
            while let Some(Ok(e)) = ev.next().await {
                if !e.id.is_empty() {
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let settle = Duration::from_secs_f64(settle);
    tokio::time::sleep(settle).await;
    let before = bench.xact_commits().await?;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for i in 0..records {
        tick.tick().await;
        bench.append(&url, &json!([{"i": i}])).await?;
    }
    let want = records * subscribers;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = got.load(Ordering::Relaxed);
    tokio::time::sleep(settle).await;
    let after = bench.xact_commits().await?;
    for r in readers {
        r.abort();
    }
    let per_record = (after - before) as f64 / records as f64;
    let per_delivered = (after - before) as f64 / delivered.max(1) as f64;
    Ok((
        format!(
            "queries  {subscribers:>4} SSE readers, {records} appends   {:.2} transactions per appended record ({per_delivered:.4} per delivered record; {delivered}/{want} delivered)",
            per_record
        ),
        json!({"scenario": "queries_per_record", "subscribers": subscribers, "records": records,
               "transactions": after - before, "per_record": per_record,
               "per_delivered_record": per_delivered, "delivered": delivered, "expected": want,
               "settle_s": settle.as_secs_f64()}),
    ))
}
