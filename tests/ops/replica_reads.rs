//! The live run list and Durable Streams reads on a gateway with `FLOWGATE_READ_URL`:
//! every run and every record once, in order, with the primary reading (close to) no rows
//! per delivered item; the same readers on the primary-only gateway for comparison.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::replica::{Load, Rig};

const READERS: usize = 4;

type Seen = Vec<(String, String)>;

/// Opens `n` live run lists of workflow `wf` on `base` (resuming after `last` if given);
/// each collects `(run id, event id)` until it has `want` (bounded).
async fn open_lists(
    http: &reqwest::Client,
    base: &str,
    wf: &str,
    (n, want): (usize, usize),
    last: Option<&str>,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut req = http
            .get(format!("{base}/v1/workflows?workflow={wf}"))
            .header("accept", "text/event-stream");
        if let Some(id) = last {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut events = resp.bytes_stream().eventsource();
        if last.is_none() {
            // The first read is the list as it is (empty: nothing of `wf` exists yet).
            let first = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("the first list in time")
                .unwrap()
                .unwrap();
            assert_eq!(first.event, "runs");
            assert_eq!(first.data, r#"{"runs":[]}"#);
        }
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while seen.len() < want {
                match tokio::time::timeout_at(deadline, events.next()).await {
                    Ok(Some(Ok(ev))) if ev.event == "run" => {
                        let run: Value = serde_json::from_str(&ev.data).unwrap();
                        seen.push((run["id"].as_str().unwrap().to_string(), ev.id));
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            seen
        }));
    }
    tasks
}

fn ids(seen: &Seen) -> Vec<String> {
    seen.iter().map(|(id, _)| id.clone()).collect()
}

/// `READERS` live lists on `base` while `n` runs of workflow `wf` start one after another,
/// and one list resuming halfway; returns the items delivered.
async fn list_phase(rig: &Rig, base: &str, wf: &str, n: usize) -> usize {
    // A run of another workflow before the lists open and one among the matching runs:
    // the filter must leave both out, of the first list and of the feed.
    let put = |id: String, workflow: String| async move {
        let r = rig
            .http
            .put(format!("{}/v1/workflows/{id}", rig.writer.base))
            .json(&json!({ "workflow": workflow }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    };
    put(format!("{wf}-other-a"), format!("{wf}-other")).await;
    let lists = open_lists(&rig.http, base, wf, (READERS, n), None).await;
    let expect: Vec<String> = (0..n).map(|i| format!("{wf}-{i:03}")).collect();
    for (i, id) in expect.iter().enumerate() {
        if i == n / 2 {
            put(format!("{wf}-other-b"), format!("{wf}-other")).await;
        }
        put(id.clone(), wf.to_string()).await;
    }
    let mut last = Seen::new();
    for l in lists {
        last = l.await.unwrap();
        assert_eq!(ids(&last), expect, "every run once, in order");
    }
    // Resuming after the middle run continues with the next one, nothing repeated.
    let half = n / 2;
    let resumed = open_lists(&rig.http, base, wf, (1, n - half), Some(&last[half - 1].1)).await;
    for l in resumed {
        assert_eq!(
            ids(&l.await.unwrap()),
            expect[half..],
            "resumed once, in order"
        );
    }
    n * READERS
}

fn report(what: &str, with: (Load, usize), without: (Load, usize)) {
    let per = |l: (Load, usize), x: f64| x / l.1 as f64;
    eprintln!(
        "{what}: per delivered item on the primary, standby gateway / primary gateway: \
         transactions {:.3} / {:.3}, rows read {:.3} / {:.3}, rows read of the table {:.3} / {:.3}; \
         router reads primary {} standby {}",
        per(with, with.0.xacts),
        per(without, without.0.xacts),
        per(with, with.0.rows),
        per(without, without.0.rows),
        per(with, with.0.table_rows),
        per(without, without.0.table_rows),
        with.0.primary_reads,
        with.0.standby_reads,
    );
}

/// Live run lists on the standby-reading gateway see every started run once, in order;
/// their reads (first list, feed fetches, a resume) are served by the standby: the primary
/// reads no more rows of `flowgate.workflows` than the gateways' own periodic reads, a
/// fraction of what lists on a gateway reading the primary cost.
#[tokio::test]
async fn run_lists_read_from_the_standby() {
    let Some(rig) = Rig::start("2000").await else {
        return;
    };
    const N: usize = 40;
    let start = rig.settled_load("workflows").await;
    let delivered = list_phase(&rig, &rig.reader.base, "listed", N).await;
    let mid = rig.settled_load("workflows").await;
    let direct = list_phase(&rig, &rig.writer.base, "direct", N).await;
    let end = rig.settled_load("workflows").await;
    let (with, without) = ((mid.since(&start), delivered), (end.since(&mid), direct));
    report("run list", with, without);
    let (load, delivered) = with;
    assert!(load.standby_reads > 0.0, "the standby served the lists");
    assert!(
        load.primary_reads / (delivered as f64) < 0.02,
        "primary reads per delivered run: {load:?}"
    );
    // Both windows hold the gateways' own periodic reads of the table (executor heartbeats,
    // queue re-checks, a /metrics scrape); only the second holds the lists' reads.
    assert!(
        load.table_rows < 0.3 * without.0.table_rows,
        "primary rows of workflows read: {load:?} with the standby, {without:?} without"
    );
    assert!(
        without.0.table_rows / without.1 as f64 > 0.1,
        "the primary-only gateway reads the runs it delivers: {without:?}"
    );
    rig.stop().await;
}

/// Reads a Durable Stream by long-poll from `-1` until it is closed; the values, in order.
async fn long_poll(http: reqwest::Client, url: String) -> Vec<i64> {
    let mut out = Vec::new();
    let mut offset = "-1".to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while tokio::time::Instant::now() < deadline {
        let r = http
            .get(format!("{url}?offset={offset}&live=long-poll"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 200 || status == 204, "long-poll: {status}");
        let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        let closed = h("stream-closed").is_some();
        offset = h("stream-next-offset").expect("next offset");
        if status == 200 {
            let rows: Vec<Value> = r.json().await.unwrap();
            out.extend(rows.iter().map(|v| v["i"].as_i64().unwrap()));
        }
        if closed {
            return out;
        }
    }
    panic!("long-poll reader never saw the close (has {})", out.len());
}

/// Reads a Durable Stream by SSE from `-1` until the close; the values, in order.
async fn sse(http: reqwest::Client, url: String) -> Vec<i64> {
    let resp = http
        .get(format!("{url}?offset=-1&live=sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = resp.bytes_stream().eventsource();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while let Ok(Some(Ok(ev))) = tokio::time::timeout_at(deadline, events.next()).await {
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        match ev.event.as_str() {
            "data" => out.extend(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["i"].as_i64().unwrap()),
            ),
            "control" if v["streamClosed"] == json!(true) => return out,
            _ => {}
        }
    }
    panic!("SSE reader never saw the close (has {})", out.len());
}

/// Long-poll and SSE readers of a Durable Stream on `base` while `n` records are appended
/// and the stream closed, then one catch-up GET; returns the items delivered.
async fn ds_phase(rig: &Rig, base: &str, name: &str, n: i64) -> usize {
    let (http, write) = (&rig.http, format!("{}/v1/stream/{name}", rig.writer.base));
    let r = http
        .put(&write)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let url = format!("{base}/v1/stream/{name}");
    let mut readers = Vec::new();
    for i in 0..READERS {
        let (h, u) = (http.clone(), url.clone());
        readers.push(if i % 2 == 0 {
            tokio::spawn(long_poll(h, u))
        } else {
            tokio::spawn(sse(h, u))
        });
    }
    for i in 0..n {
        let r = http
            .post(&write)
            .header("content-type", "application/json")
            .body(json!({ "i": i }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let r = http
        .post(&write)
        .header("stream-closed", "true")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "close: {}", r.status());
    let expect: Vec<i64> = (0..n).collect();
    for r in readers {
        assert_eq!(r.await.unwrap(), expect, "every record once, in order");
    }
    // A plain catch-up read after the close returns everything, closed.
    let r = http.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["stream-closed"], "true");
    let rows: Vec<Value> = r.json().await.unwrap();
    assert_eq!(rows.len(), n as usize);
    (n as usize) * (READERS + 1)
}

/// Durable Streams readers (long-poll, SSE, catch-up) on the standby-reading gateway see
/// every record once, in order, and the primary reads close to no stream rows for them,
/// unlike the same readers on the primary-only gateway.
#[tokio::test]
async fn durable_stream_reads_come_from_the_standby() {
    let Some(rig) = Rig::start("2000").await else {
        return;
    };
    const N: i64 = 120;
    let start = rig.settled_load("ds_records").await;
    let delivered = ds_phase(&rig, &rig.reader.base, "rep", N).await;
    let mid = rig.settled_load("ds_records").await;
    let direct = ds_phase(&rig, &rig.writer.base, "direct", N).await;
    let end = rig.settled_load("ds_records").await;
    let (with, without) = ((mid.since(&start), delivered), (end.since(&mid), direct));
    report("durable stream", with, without);
    let (load, delivered) = with;
    assert!(load.standby_reads > 0.0, "the standby served the reads");
    assert!(
        load.table_rows / (delivered as f64) < 0.02,
        "primary rows of ds_records read per delivered record: {load:?}"
    );
    assert!(
        without.0.table_rows / without.1 as f64 > 0.1,
        "the primary-only gateway reads the rows it delivers: {without:?}"
    );
    rig.stop().await;
}
