//! Streams: SSE delivery, ordering under concurrent appenders, resume, long-poll, close,
//! slow subscribers.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn sse_delivers_records_then_end() {
    let app = spawn_app().await;
    app.create_run("r1").await;
    let mut sse = app.sse("/v1/workflows/r1/streams/out", None).await;
    // Sent as raw text: the records must come back byte-exact (key order kept).
    let r = app
        .http
        .post(app.url("/v1/workflows/r1/streams/out"))
        .header("content-type", "application/json")
        .body(r#"[{"b":1,"a":2}, "two\nlines"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"first_offset":0,"next":2}"#);
    let r = app
        .http
        .post(app.url("/v1/workflows/r1/streams/out/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let evs = collect_events(&mut sse, 3, Duration::from_secs(10)).await;
    assert_eq!(evs.len(), 3);
    assert_eq!(
        (evs[0].id.as_str(), evs[0].data.as_str()),
        ("0", r#"{"b":1,"a":2}"#)
    );
    assert_eq!(
        (evs[1].id.as_str(), evs[1].data.as_str()),
        ("1", r#""two\nlines""#)
    );
    assert_eq!(evs[2].event, "end");
    assert_eq!(evs[2].data, r#"{"next":2}"#);
    // Appending to a closed stream is a conflict and stores nothing.
    let r = app
        .http
        .post(app.url("/v1/workflows/r1/streams/out"))
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM flowgate.stream_records")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

/// Several appenders (HTTP and the SQL function) race; several subscribers each see
/// offsets 0..N-1 exactly once, in order, and each writer's records in its own order.
#[tokio::test]
async fn concurrent_appenders_are_gapless_for_every_subscriber() {
    let app = spawn_app().await;
    app.create_run("r").await;
    const WRITERS: usize = 4;
    const PER: usize = 60;
    let total = WRITERS * PER + PER;
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(app.sse("/v1/workflows/r/streams/s", None).await);
    }
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let http = app.http.clone();
        let url = app.url("/v1/workflows/r/streams/s");
        tasks.push(tokio::spawn(async move {
            for i in 0..PER {
                let r = http
                    .post(&url)
                    .json(&[json!({"w": w, "i": i})])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    let pool = app.pool.clone();
    tasks.push(tokio::spawn(async move {
        for i in 0..PER {
            sqlx::query("SELECT flowgate.write_stream('r', 's', $1::jsonb)")
                .bind(json!({"w": "sql", "i": i}))
                .execute(&pool)
                .await
                .unwrap();
        }
    }));
    // A late subscriber starting mid-way from offset 0 catches up from the database.
    tokio::time::sleep(Duration::from_millis(100)).await;
    subs.push(app.sse("/v1/workflows/r/streams/s", None).await);
    for t in tasks {
        t.await.unwrap();
    }
    for sub in subs.iter_mut() {
        let evs = collect_events(sub, total, Duration::from_secs(30)).await;
        assert_eq!(evs.len(), total);
        let mut last_by_writer: HashMap<String, i64> = HashMap::new();
        for (k, ev) in evs.iter().enumerate() {
            assert_eq!(ev.id, k.to_string(), "offsets are contiguous and in order");
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            let w = v["w"].to_string();
            let i = v["i"].as_i64().unwrap();
            let prev = last_by_writer.insert(w, i).unwrap_or(-1);
            assert_eq!(
                i,
                prev + 1,
                "each writer's records arrive in its order, none twice"
            );
        }
    }
}

/// Disconnect mid-stream, reconnect with Last-Event-ID: exactly the rest arrives.
#[tokio::test]
async fn resume_with_last_event_id() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let values: Vec<Value> = (0..20).map(|i| json!(i)).collect();
    app.append("r", "s", &values).await;
    let mut first = app.sse("/v1/workflows/r/streams/s", None).await;
    let got = collect_events(&mut first, 7, Duration::from_secs(10)).await;
    let last = got.last().unwrap().id.clone();
    assert_eq!(last, "6");
    drop(first);
    app.append("r", "s", &[json!(20), json!(21)]).await;
    app.http
        .post(app.url("/v1/workflows/r/streams/s/close"))
        .send()
        .await
        .unwrap();
    // `?from=` is ignored when Last-Event-ID is present (browsers keep the URL).
    let mut second = app
        .sse("/v1/workflows/r/streams/s?from=0", Some(&last))
        .await;
    let rest = collect_events(&mut second, 100, Duration::from_secs(10)).await;
    let ids: Vec<&str> = rest
        .iter()
        .filter(|e| e.event != "end")
        .map(|e| e.id.as_str())
        .collect();
    let want: Vec<String> = (7..22).map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    assert_eq!(rest.last().unwrap().event, "end");
    // `?from=` alone starts there.
    let mut third = app.sse("/v1/workflows/r/streams/s?from=20", None).await;
    let tail = collect_events(&mut third, 100, Duration::from_secs(10)).await;
    assert_eq!(
        tail.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        vec!["20", "21", r#"{"next":22}"#]
    );
}

#[tokio::test]
async fn long_poll_returns_on_commit_and_on_timeout() {
    let app = spawn_app().await;
    app.create_run("r").await;
    // Nothing yet: a short timeout returns an empty list.
    let r: Value = app
        .http
        .get(app.url("/v1/workflows/r/streams/s/poll?from=0&timeout=0.2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"records": [], "next": 0, "closed": false}));
    // A waiting poll returns when a record commits, long before its 30 s timeout.
    let http = app.http.clone();
    let url = app.url("/v1/workflows/r/streams/s/poll?from=0&timeout=30");
    let waiter = tokio::spawn(async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    app.append("r", "s", &[json!("a"), json!("b")]).await;
    let r = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("poll returned")
        .unwrap();
    assert_eq!(r["records"][0], json!({"offset": 0, "value": "a"}));
    assert_eq!(
        r["next"].as_i64().unwrap(),
        r["records"].as_array().unwrap().len() as i64
    );
    // Records that exist come back at once; closed is reported.
    app.http
        .post(app.url("/v1/workflows/r/streams/s/close"))
        .send()
        .await
        .unwrap();
    let r: Value = app
        .http
        .get(app.url("/v1/workflows/r/streams/s/poll?from=1&timeout=30"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r,
        json!({"records": [{"offset": 1, "value": "b"}], "next": 2, "closed": true})
    );
    let r: Value = app
        .http
        .get(app.url("/v1/workflows/r/streams/s/poll?from=2&timeout=30"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"records": [], "next": 2, "closed": true}));
}

/// A subscriber that stops reading does not hold up others; when it reads again it gets
/// every record in order (it lagged out of the broadcast and fell back to the database).
#[tokio::test]
async fn slow_subscriber_does_not_block_others() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let mut slow = app.sse("/v1/workflows/r/streams/s", None).await;
    let mut fast = app.sse("/v1/workflows/r/streams/s", None).await;
    let big = "x".repeat(16000);
    const N: usize = 1000;
    let fast_reader =
        tokio::spawn(async move { collect_events(&mut fast, N, Duration::from_secs(60)).await });
    // One record per append: far more broadcast batches than a topic buffers, and more
    // bytes than the slow client's socket holds, so the slow subscriber must lag.
    for i in 0..N {
        app.append("r", "s", &[json!({"i": i, "pad": big})]).await;
    }
    let got = fast_reader.await.unwrap();
    assert_eq!(
        got.len(),
        N,
        "the fast subscriber got everything while the slow one was stuck"
    );
    let evs = collect_events(&mut slow, N, Duration::from_secs(60)).await;
    assert_eq!(evs.len(), N);
    for (k, ev) in evs.iter().enumerate() {
        assert_eq!(ev.id, k.to_string());
    }
}

#[tokio::test]
async fn heartbeat_comments_and_headers() {
    let app = spawn_app_with(|c| c.heartbeat = 0.2).await;
    app.create_run("r").await;
    let resp = app
        .http
        .get(app.url("/v1/workflows/r/streams/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    assert!(resp.headers().get("content-encoding").is_none());
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while text.matches(": heartbeat").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("heartbeats arrive")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.starts_with(": flowgate\n\n"),
        "a comment right after the headers: {text:?}"
    );
}

#[tokio::test]
async fn a_zero_timeout_poll_answers_the_records_that_exist() {
    let app = spawn_app().await;
    app.create_run("z").await;
    app.append("z", "s", &[json!(1), json!(2)]).await;
    for _ in 0..20 {
        let body: serde_json::Value = app
            .http
            .get(app.url("/v1/workflows/z/streams/s/poll?timeout=0"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["records"].as_array().map(Vec::len), Some(2), "{body}");
    }
}
