//! Durable Streams live reads: racing writers, long-poll, SSE catch-up past the chunk limit,
//! delivery across processes, and the read-only mapping of workflow streams.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::durable::{header, offset};
use crate::helpers::*;

/// Writers on separate connections race on one stream: every append gets its own offset,
/// offsets are gapless, and a live reader sees exactly the committed order.
#[tokio::test]
async fn racing_appends_are_gapless_and_ordered() {
    let app = spawn_app().await;
    let url = app.url("/v1/stream/race");
    let r = app
        .http
        .put(&url)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let live = app
        .http
        .get(format!("{url}?offset=-1&live=sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let mut events = Box::pin(
        eventsource_stream::Eventsource::eventsource(live.bytes_stream()).map(|e| e.unwrap()),
    );

    const WRITERS: usize = 6;
    const EACH: usize = 20;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        // One client per writer: separate connections, truly concurrent transactions.
        let http = reqwest::Client::new();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..EACH {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"w":{w},"i":{i}}}"#))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
                offsets.push(header(&r, "stream-next-offset").unwrap());
            }
            offsets
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let offs = t.await.unwrap();
        // Each writer's own appends come back in increasing offset order.
        assert!(offs.windows(2).all(|p| p[0] < p[1]));
        all.extend(offs);
    }
    all.sort();
    let expected: Vec<String> = (1..=(WRITERS * EACH) as i64).map(offset).collect();
    assert_eq!(all, expected, "offsets are unique and gapless");

    let rows: Vec<(i64,)> = sqlx::query_as("SELECT seq FROM flowgate.ds_records ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), WRITERS * EACH);

    let r = app.http.get(&url).send().await.unwrap();
    let stored: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(stored.len(), WRITERS * EACH);
    for w in 0..WRITERS {
        let mine: Vec<i64> = stored
            .iter()
            .filter(|v| v["w"] == w)
            .map(|v| v["i"].as_i64().unwrap())
            .collect();
        assert_eq!(mine, (0..EACH as i64).collect::<Vec<_>>());
    }

    // The SSE reader saw the same sequence, in order.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < stored.len() {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("sse delivered everything in time")
            .expect("sse still open");
        if ev.event == "data" {
            let batch: Vec<serde_json::Value> = serde_json::from_str(&ev.data).unwrap();
            seen.extend(batch);
        }
    }
    assert_eq!(seen, stored);
}

#[tokio::test]
async fn long_poll_wakes_on_append_and_times_out_with_204() {
    let app = spawn_app_with(|c| c.ds_long_poll = 0.3).await;
    let url = app.url("/v1/stream/lp");
    app.http
        .put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let r = app
        .http
        .get(format!("{url}?offset=-1&live=long-poll"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(header(&r, "stream-cursor").is_some());

    let waiting = tokio::spawn({
        let http = app.http.clone();
        let url = format!("{url}?offset=now&live=long-poll");
        async move { http.get(url).send().await.unwrap() }
    });
    // Append until the waiter is answered (it may not have started waiting yet).
    let mut n = 0;
    while !waiting.is_finished() && n < 50 {
        app.http
            .post(&url)
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = waiting.await.unwrap();
    assert!(
        r.status() == StatusCode::OK || r.status() == StatusCode::NO_CONTENT,
        "{}",
        r.status()
    );

    // Data available: answered at once, with an ETag, a cursor and shared caching.
    let r = app
        .http
        .get(format!("{url}?offset=-1&live=long-poll&cursor=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "etag").is_some());
    let cursor: i64 = header(&r, "stream-cursor").unwrap().parse().unwrap();
    assert!(cursor > 5);
    assert!(header(&r, "cache-control").unwrap().contains("max-age=60"));
}

#[tokio::test]
async fn workflow_streams_are_readable_through_the_protocol() {
    let app = spawn_app().await;
    app.create_run("run-1").await;
    app.append(
        "run-1",
        "tokens",
        &[serde_json::json!("Hel"), serde_json::json!({"t": "lo"})],
    )
    .await;
    let url = app.url("/v1/stream/workflows/run-1/tokens");
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(&r, "stream-next-offset").unwrap(), offset(2));
    assert_eq!(r.text().await.unwrap(), r#"["Hel",{"t":"lo"}]"#);

    let r = app
        .http
        .get(format!("{url}?offset={}", offset(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"[{"t":"lo"}]"#);

    let mut sse = app
        .sse(
            &format!(
                "/v1/stream/workflows/run-1/tokens?offset={}&live=sse",
                offset(2)
            ),
            None,
        )
        .await;
    app.append("run-1", "tokens", &[serde_json::json!("!")])
        .await;
    app.http
        .post(app.url("/v1/workflows/run-1/streams/tokens/close"))
        .send()
        .await
        .unwrap();
    let evs = collect_events(&mut sse, 6, Duration::from_secs(10)).await;
    let data: Vec<_> = evs
        .iter()
        .filter(|e| e.event == "data")
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(data, vec![r#"["!"]"#.to_string()]);
    let last = evs.iter().rev().find(|e| e.event == "control").unwrap();
    let control: serde_json::Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(control["streamClosed"], true);
    assert_eq!(control["streamNextOffset"], offset(3));

    let r = app.http.post(&url).body("[1]").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = app
        .http
        .head(app.url("/v1/stream/workflows/nope/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A live reader catches up across several byte-limited chunks without any new append to
/// wake it, then sees the close.
#[tokio::test]
async fn sse_catches_up_past_the_chunk_limit() {
    let app = spawn_app().await;
    let url = app.url("/v1/stream/big");
    app.http
        .put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let part = "x".repeat(700 * 1024);
    for i in 0..4 {
        let close = if i == 3 { "true" } else { "false" };
        let r = app
            .http
            .post(&url)
            .header("content-type", "text/plain")
            .header("stream-closed", close)
            .body(part.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let mut sse = app.sse("/v1/stream/big?offset=-1&live=sse", None).await;
    let mut bytes = 0;
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !closed {
        let ev = tokio::time::timeout_at(deadline, sse.next())
            .await
            .expect("caught up in time")
            .expect("stream open until the close");
        match ev.event.as_str() {
            "data" => bytes += ev.data.len(),
            "control" => {
                let c: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
                closed = c["streamClosed"] == true;
            }
            _ => {}
        }
    }
    assert_eq!(bytes, 4 * part.len());
}

/// An append on one server reaches a live reader on another through NOTIFY.
#[tokio::test]
async fn append_on_one_process_reaches_a_reader_on_another() {
    let a = spawn_app().await;
    let b = spawn_on(&a.db_url, |_| {}).await;
    a.http
        .put(a.url("/v1/stream/shared"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let mut sse = b.sse("/v1/stream/shared?offset=-1&live=sse", None).await;
    a.http
        .post(a.url("/v1/stream/shared"))
        .header("content-type", "application/json")
        .body(r#"[{"n":1},{"n":2}]"#)
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 {
        let ev = tokio::time::timeout_at(deadline, sse.next())
            .await
            .expect("delivered across processes in time")
            .expect("sse open");
        if ev.event == "data" {
            let batch: Vec<serde_json::Value> = serde_json::from_str(&ev.data).unwrap();
            seen.extend(batch);
        }
    }
    assert_eq!(
        seen,
        vec![serde_json::json!({"n":1}), serde_json::json!({"n":2})]
    );
}
