//! Group commit: concurrent writes share transactions, yet each caller gets its own
//! contiguous offsets (or version, or message id) and its own error.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// Many producers append batches of 1–3 records to one stream at once. Every answer's
/// `[first_offset, next)` holds exactly that caller's records, the ranges tile 0..N, every
/// reader sees 0..N-1 once and in order, and the appends shared transactions.
#[tokio::test]
async fn concurrent_appends_to_one_stream_get_their_own_contiguous_offsets() {
    let app = spawn_app().await;
    app.create_run("r").await;
    const WRITERS: usize = 16;
    const PER: usize = 20;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(app.sse("/v1/workflows/r/streams/s", None).await);
    }
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let http = app.http.clone();
        let url = app.url("/v1/workflows/r/streams/s");
        tasks.push(tokio::spawn(async move {
            let mut ranges = Vec::new();
            for i in 0..PER {
                let batch: Vec<Value> = (0..1 + (w + i) % 3)
                    .map(|j| json!({"w": w, "i": i, "j": j}))
                    .collect();
                let r = http.post(&url).json(&batch).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let body: Value = r.json().await.unwrap();
                let first = body["first_offset"].as_i64().unwrap();
                let next = body["next"].as_i64().unwrap();
                assert_eq!(next - first, batch.len() as i64, "one range per caller");
                ranges.push((first, batch));
            }
            ranges
        }));
    }
    let mut expected: HashMap<i64, Value> = HashMap::new();
    for t in tasks {
        for (first, batch) in t.await.unwrap() {
            for (k, v) in batch.into_iter().enumerate() {
                let prev = expected.insert(first + k as i64, v);
                assert!(
                    prev.is_none(),
                    "offset {} handed out twice",
                    first + k as i64
                );
            }
        }
    }
    let total = expected.len();
    assert!(
        (0..total as i64).all(|o| expected.contains_key(&o)),
        "no gaps"
    );
    for sub in readers.iter_mut() {
        let evs = collect_events(sub, total, Duration::from_secs(30)).await;
        assert_eq!(evs.len(), total);
        for (k, ev) in evs.iter().enumerate() {
            assert_eq!(ev.id, k.to_string(), "contiguous, in order, once");
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            assert_eq!(
                v,
                expected[&(k as i64)],
                "the caller's record at its offset"
            );
        }
    }
    // Requests waiting together were committed together.
    let txns: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM flowgate.stream_records")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        (txns as usize) < WRITERS * PER,
        "{txns} transactions for {} appends",
        WRITERS * PER
    );
}

/// Writes that fail (unknown run, closed stream, reused idempotency key) share batches with
/// writes that succeed; each gets its own answer and only the good ones are stored.
#[tokio::test]
async fn a_failing_write_fails_alone() {
    let app = spawn_app().await;
    app.create_run("r").await;
    app.append("r", "closed", &[json!(0)]).await;
    let r = app
        .http
        .post(app.url("/v1/workflows/r/streams/closed/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url("/v1/workflows/r/messages"))
        .json(&json!({"topic": "t", "body": 1, "idempotency_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    const ROUNDS: usize = 30;
    let mut tasks = Vec::new();
    for i in 0..ROUNDS {
        let http = app.http.clone();
        let u = |p: &str| app.url(p);
        let reqs = vec![
            (http.post(u("/v1/workflows/r/streams/ok")).json(&[i]), 200),
            (
                http.post(u("/v1/workflows/r/streams/closed")).json(&[i]),
                409,
            ),
            (http.post(u("/v1/workflows/nope/streams/s")).json(&[i]), 404),
            (http.put(u("/v1/workflows/r/events/e")).json(&i), 200),
            (http.put(u("/v1/workflows/nope/events/e")).json(&i), 404),
            (
                http.post(u("/v1/workflows/r/messages"))
                    .json(&json!({"topic": "t", "body": 2, "idempotency_key": "k"})),
                409,
            ),
            (
                http.post(u("/v1/workflows/r/messages"))
                    .json(&json!({"topic": "t", "body": 1, "idempotency_key": "k"})),
                202,
            ),
            (
                http.post(u("/v1/workflows/r/messages"))
                    .json(&json!({"topic": "u", "body": i})),
                202,
            ),
        ];
        for (req, want) in reqs {
            tasks.push(tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                assert_eq!(status, want, "{body}");
                body
            }));
        }
    }
    let mut versions = Vec::new();
    for t in tasks {
        let body = t.await.unwrap();
        if let Some(v) = body.get("version") {
            versions.push(v.as_i64().unwrap());
        }
        if body.get("duplicate") == Some(&json!(true)) {
            assert_eq!(
                body["message_id"],
                json!(1),
                "a repeat returns the first id"
            );
        }
    }
    versions.sort();
    assert_eq!(versions, (1..=ROUNDS as i64).collect::<Vec<_>>());
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM flowgate.stream_records WHERE key = 'ok'),
                (SELECT count(*) FROM flowgate.stream_records WHERE key = 'closed'),
                (SELECT count(*) FROM flowgate.messages)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(counts, (ROUNDS as i64, 1, 1 + ROUNDS as i64));
}

/// Records this process appends reach its live readers without being read back: the
/// stream's fetcher broadcasts what the committer handed over, and reads the database only
/// when another writer's records come first (here, one SQL append in the middle).
#[tokio::test]
async fn own_appends_reach_readers_without_a_read_back() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let mut sub = app.sse("/v1/workflows/r/streams/s", None).await;
    let reads = || async {
        let text = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("flowgate_stream_fetcher_reads_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("the reads counter is exported")
    };
    // The first record lets the fetcher settle at its starting position.
    app.append("r", "s", &[json!(0)]).await;
    assert_eq!(
        collect_events(&mut sub, 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    let before = reads().await;
    const N: usize = 20;
    for i in 1..=N {
        if i == N / 2 {
            sqlx::query("SELECT flowgate.write_stream('r', 's', $1::jsonb)")
                .bind(json!(i))
                .execute(&app.pool)
                .await
                .unwrap();
        } else {
            app.append("r", "s", &[json!(i)]).await;
        }
    }
    let evs = collect_events(&mut sub, N, Duration::from_secs(10)).await;
    let ids: Vec<String> = evs.iter().map(|e| e.id.clone()).collect();
    let want: Vec<String> = (1..=N).map(|i| i.to_string()).collect();
    assert_eq!(ids, want, "every record once, in order");
    let data: Vec<String> = evs.iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, want, "each record's own value");
    let read = reads().await - before;
    assert!(
        read < (N / 2) as f64,
        "{read} reads for {N} appends, only one of them from another writer"
    );
}
