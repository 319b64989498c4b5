//! The live endpoint: one SSE connection per run multiplexing status, events and every
//! stream's records, resumable with `Last-Event-ID` without duplicates or gaps.

use std::collections::BTreeMap;
use std::time::Duration;

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use flowgate::http::live::{Cursor, MAX_LIVE_STREAMS};

use crate::helpers::*;

/// The next event, failing the test if none arrives in time.
async fn next(sse: &mut (impl Stream<Item = Event> + Unpin)) -> (String, Value, String) {
    let ev = tokio::time::timeout(Duration::from_secs(10), sse.next())
        .await
        .expect("a live event in time")
        .expect("the connection stays open");
    let data = serde_json::from_str(&ev.data).expect("JSON data");
    (ev.event, data, ev.id)
}

/// Reads `n` events.
async fn take(sse: &mut (impl Stream<Item = Event> + Unpin), n: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (name, data, _) = next(sse).await;
        out.push((name, data));
    }
    out
}

async fn set_event(app: &TestApp, run: &str, key: &str, value: Value) {
    let r = app
        .http
        .put(app.url(&format!("/v1/workflows/{run}/events/{key}")))
        .json(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn close(app: &TestApp, run: &str, key: &str) {
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{run}/streams/{key}/close")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Finishes a run the way another process would: update the row, then notify.
async fn finish(app: &TestApp, run: &str, output: Value) {
    sqlx::query("UPDATE flowgate.workflows SET status = 'SUCCESS', output = $2 WHERE id = $1")
        .bind(run)
        .bind(output)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("SELECT flowgate.notify('w', $1, '', 0)")
        .bind(run)
        .execute(&app.pool)
        .await
        .unwrap();
}

fn record(key: &str, offset: i64, value: Value) -> (String, Value) {
    let data = json!({ "key": key, "offset": offset, "value": value });
    ("record".to_string(), data)
}

fn event(key: &str, value: Value, version: i64) -> (String, Value) {
    let data = json!({ "key": key, "value": value, "version": version });
    ("event".to_string(), data)
}

#[tokio::test]
async fn live_multiplexes_status_events_and_every_stream() {
    let app = spawn_app().await;
    app.create_run("r1").await;
    app.append("r1", "log", &[json!("booted")]).await;
    let mut sse = app.sse("/v1/workflows/r1/live", None).await;

    let (name, mut status, _) = next(&mut sse).await;
    assert_eq!(name, "status");
    let started = status["started_at"].take();
    assert!(started.is_string(), "{started}");
    assert_eq!(
        status,
        json!({"id": "r1", "workflow": "external", "status": "PENDING", "output": null, "error": null,
            "outcome": null, "started_at": null, "finished_at": null, "parent_id": null})
    );
    assert_eq!(
        take(&mut sse, 1).await,
        vec![record("log", 0, json!("booted"))]
    );

    set_event(&app, "r1", "progress", json!(40)).await;
    assert_eq!(
        take(&mut sse, 1).await,
        vec![event("progress", json!(40), 1)]
    );

    // A stream created after the connection opened, over HTTP …
    app.append("r1", "output", &[json!("Hello "), json!("world")])
        .await;
    let got = take(&mut sse, 2).await;
    assert_eq!(
        got,
        vec![
            record("output", 0, json!("Hello ")),
            record("output", 1, json!("world"))
        ]
    );
    close(&app, "r1", "output").await;
    let (name, data, _) = next(&mut sse).await;
    assert_eq!(
        (name.as_str(), data),
        ("close", json!({"key": "output", "next": 2}))
    );

    // … and one created by a SQL producer, whose note comes through the listener.
    sqlx::query("SELECT flowgate.write_stream('r1', 'sql', '{\"n\": 1}'::jsonb)")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        take(&mut sse, 1).await,
        vec![record("sql", 0, json!({"n": 1}))]
    );

    // Status changes keep coming after the run finishes: the connection stays open.
    finish(&app, "r1", json!({"approved": true})).await;
    let (name, data, _) = next(&mut sse).await;
    assert_eq!(name, "status");
    assert_eq!(data["status"], "SUCCESS");
    assert_eq!(data["output"], json!({"approved": true}));
    set_event(&app, "r1", "after", json!("still open")).await;
    assert_eq!(
        take(&mut sse, 1).await,
        vec![event("after", json!("still open"), 2)]
    );
}

#[tokio::test]
async fn live_resumes_from_last_event_id_without_duplicates_or_gaps() {
    let app = spawn_app().await;
    app.create_run("r2").await;
    let mut sse = app.sse("/v1/workflows/r2/live", None).await;
    assert_eq!(next(&mut sse).await.0, "status");
    app.append("r2", "output", &[json!("a"), json!("b")]).await;
    let mut mid = String::new();
    for want in 0..2 {
        let (name, data, id) = next(&mut sse).await;
        assert_eq!(
            (name.as_str(), data["offset"].as_i64()),
            ("record", Some(want))
        );
        mid = id;
    }
    // Delivered after `mid`: the client must get these again when it resumes from `mid`.
    set_event(&app, "r2", "progress", json!(10)).await;
    app.append("r2", "output", &[json!("c")]).await;
    assert_eq!(take(&mut sse, 2).await.len(), 2);
    drop(sse);

    // While disconnected: more records, a new stream, an event, a close.
    app.append("r2", "output", &[json!("d"), json!("e")]).await;
    app.append("r2", "log", &[json!("new stream")]).await;
    set_event(&app, "r2", "progress", json!(50)).await;
    close(&app, "r2", "output").await;

    let mut sse = app.sse("/v1/workflows/r2/live", Some(&mid)).await;
    let mut got: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut last = String::new();
    for _ in 0..6 {
        let (name, data, id) = next(&mut sse).await;
        let source = match name.as_str() {
            "record" | "close" => format!("{name}:{}", data["key"].as_str().unwrap_or("")),
            other => other.to_string(),
        };
        got.entry(source).or_default().push(data);
        last = id;
    }
    let offsets = |k: &str| -> Vec<i64> {
        got.get(k)
            .map(|v| v.iter().filter_map(|d| d["offset"].as_i64()).collect())
            .unwrap_or_default()
    };
    assert_eq!(offsets("record:output"), vec![2, 3, 4], "{got:?}");
    assert_eq!(offsets("record:log"), vec![0], "{got:?}");
    // Latest value per key: progress 10 (v1) was overwritten by 50 (v2).
    assert_eq!(
        got["event"],
        vec![json!({"key": "progress", "value": 50, "version": 2})]
    );
    assert_eq!(
        got["close:output"],
        vec![json!({"key": "output", "next": 5})]
    );
    assert!(!got.contains_key("status"), "status unchanged: not resent");

    // Nothing else was queued: the next frame is the next change.
    set_event(&app, "r2", "marker", json!(1)).await;
    assert_eq!(take(&mut sse, 1).await, vec![event("marker", json!(1), 3)]);
    drop(sse);

    // Resuming from `last` replays only what came after it (the marker): no record, no
    // close again. A status change made while away is delivered; `?cursor=` works like the
    // header.
    let mut sse = app.sse("/v1/workflows/r2/live", Some(&last)).await;
    let (name, data, end) = next(&mut sse).await;
    assert_eq!((name, data), event("marker", json!(1), 3));
    drop(sse);
    finish(&app, "r2", json!("done")).await;
    let mut sse = app
        .sse(&format!("/v1/workflows/r2/live?cursor={end}"), None)
        .await;
    let (name, data, _) = next(&mut sse).await;
    assert_eq!(
        (name.as_str(), data["status"].as_str()),
        ("status", Some("SUCCESS"))
    );
    set_event(&app, "r2", "marker", json!(2)).await;
    assert_eq!(take(&mut sse, 1).await, vec![event("marker", json!(2), 4)]);
}

async fn error_of(app: &TestApp, path: &str, last_event_id: Option<&str>) -> (u16, Value) {
    let mut req = app.http.get(app.url(path));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn live_rejects_bad_ids_and_cursors_with_json_errors() {
    let app = spawn_app().await;
    app.create_run("r3").await;
    app.append("r3", "output", &[json!("x")]).await;
    let long = "x".repeat(300);
    let (s, body) = error_of(&app, &format!("/v1/workflows/{long}/live"), None).await;
    assert_eq!((s, body["error"]["field"].as_str()), (400, Some("id")));
    let (s, body) = error_of(&app, "/v1/workflows/nope/live", None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("run_not_found"))
    );

    let cursor = |v: i64, s: &[(&str, i64)], e: &[&str]| {
        Cursor {
            v,
            s: s.iter().map(|(k, o)| (k.to_string(), *o)).collect(),
            e: e.iter().map(|k| k.to_string()).collect(),
            st: None,
            p: 0,
        }
        .encode()
    };
    let cases = [
        "not a cursor!".to_string(),
        "eyJ2IjoxfQ=x".to_string(),
        cursor(5, &[], &[]),
        cursor(0, &[("output", 2)], &[]),
        cursor(0, &[("missing", 0)], &[]),
        cursor(0, &[("output", 1)], &["output"]),
    ];
    for bad in &cases {
        let (s, body) = error_of(&app, "/v1/workflows/r3/live", Some(bad)).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_cursor");
        assert_eq!(body["error"]["field"], "Last-Event-ID");
        let (s, body) = error_of(&app, &format!("/v1/workflows/r3/live?cursor={bad}"), None).await;
        assert_eq!(
            (s, body["error"]["field"].as_str()),
            (400, Some("cursor")),
            "{bad}"
        );
    }
    // A good one is accepted.
    let ok = cursor(0, &[("output", 1)], &[]);
    let mut sse = app.sse("/v1/workflows/r3/live", Some(&ok)).await;
    assert_eq!(next(&mut sse).await.0, "status");
}

#[tokio::test]
async fn live_follows_at_most_the_stream_limit_and_says_so() {
    let app = spawn_app().await;
    app.create_run("r4").await;
    for i in 0..=MAX_LIVE_STREAMS {
        app.append("r4", &format!("s{i:02}"), &[json!(i)]).await;
    }
    let mut sse = app.sse("/v1/workflows/r4/live", None).await;
    let got = take(&mut sse, MAX_LIVE_STREAMS + 2).await;
    let limits: Vec<_> = got.iter().filter(|(n, _)| n == "limit").collect();
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0].1["max_streams"], MAX_LIVE_STREAMS);
    let records = got.iter().filter(|(n, _)| n == "record").count();
    assert_eq!(records, MAX_LIVE_STREAMS);
    let status = got.iter().filter(|(n, _)| n == "status").count();
    assert_eq!(status, 1);
}

#[tokio::test]
async fn live_ends_on_shutdown_and_resumes_on_the_next_server() {
    let mut app = spawn_app().await;
    app.create_run("r5").await;
    let mut sse = app.sse("/v1/workflows/r5/live", None).await;
    app.append("r5", "output", &[json!("one "), json!("two ")])
        .await;
    let mut last = String::new();
    for want in ["status", "record", "record"] {
        let (name, _, id) = next(&mut sse).await;
        assert_eq!(name, want);
        last = id;
    }
    app.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), sse.next()).await;
    assert!(matches!(ended, Ok(None)), "the response ends on shutdown");

    // Written while no server runs; a new server on the same database resumes from `last`.
    sqlx::query("SELECT flowgate.write_stream('r5', 'output', '\"three\"'::jsonb)")
        .execute(&app.pool)
        .await
        .unwrap();
    let app = spawn_on(&app.db_url, |_| {}).await;
    let mut sse = app.sse("/v1/workflows/r5/live", Some(&last)).await;
    assert_eq!(
        take(&mut sse, 1).await,
        vec![record("output", 2, json!("three"))]
    );
}
