//! The DBOS source against a real DBOS app (the `dbos` Python package, portable
//! serialization): streams over SSE (in order, once, `end` at the close, resumable), the
//! event long-poll, approvals into `DBOS.recv` (message endpoint and approval links, each
//! received once), the listener killed mid-stream, an app without LISTEN/NOTIFY, bad input
//! and tokens.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::dbos_support::*;
use crate::helpers::*;

/// A DBOS id in a path (ids may hold `::`; encoded as a browser would).
fn enc(id: &str) -> String {
    id.replace(':', "%3A")
}

/// Reads `(offset, value)` records of a stream SSE until `end` (asserted) or `within`.
async fn read_to_end(
    stream: &mut (impl futures::Stream<Item = eventsource_stream::Event> + Unpin),
    within: Duration,
) -> Vec<(i64, Value)> {
    let events = collect_events(stream, usize::MAX, within).await;
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("end"),
        "the stream ends with `event: end`"
    );
    events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| {
            (
                e.id.parse().unwrap(),
                serde_json::from_str(&e.data).unwrap(),
            )
        })
        .collect()
}

fn tokens(range: std::ops::Range<i64>) -> Vec<(i64, Value)> {
    range.map(|i| (i, json!(format!("tok{i} ")))).collect()
}

#[tokio::test]
async fn dbos_stream_is_served_in_order_once_with_end_and_resumes() {
    let Some((app, mut dbos)) = spawn_with_dbos(true, |_| {}).await else {
        return;
    };
    let id = "wf::stream:1";
    dbos.start(id, 30, 30).await;
    let path = format!("/v1/dbos/workflows/{}/streams/output", enc(id));
    let mut sse = app.sse(&path, None).await;
    // Mid-stream: a second reader resumes after what the first has seen so far.
    let first = collect_events(&mut sse, 8, Duration::from_secs(30)).await;
    assert_eq!(first.len(), 8);
    let last = first.last().unwrap().id.clone();
    let mut resumed = app.sse(&path, Some(&last)).await;
    let rest = read_to_end(&mut sse, Duration::from_secs(60)).await;
    let mut all: Vec<(i64, Value)> = first
        .iter()
        .map(|e| {
            (
                e.id.parse().unwrap(),
                serde_json::from_str(&e.data).unwrap(),
            )
        })
        .collect();
    all.extend(rest);
    assert_eq!(all, tokens(0..30), "every record once, in order");
    let after = read_to_end(&mut resumed, Duration::from_secs(30)).await;
    assert_eq!(after, tokens(8..30), "resumed after Last-Event-ID {last}");
    // The long-poll reads the same records and the close.
    let polled = app
        .get_json(&format!("{path}/poll?from=25&timeout=1"))
        .await;
    assert_eq!(polled["next"], 30);
    assert_eq!(polled["closed"], true);
    assert_eq!(
        polled["records"][0],
        json!({"offset": 25, "value": "tok25 "})
    );
    dbos.send(&format!("result {id}")).await;
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_event_long_poll_wakes_on_set_event() {
    let Some((app, mut dbos)) = spawn_with_dbos(true, |_| {}).await else {
        return;
    };
    let id = "wf-events";
    dbos.start(id, 6, 400).await;
    let poll = |after: i64| {
        app.http
            .get(app.url(&format!(
                "/v1/dbos/workflows/{id}/events/progress?after={after}&timeout=20"
            )))
            .send()
    };
    let first: Value = poll(0).await.unwrap().json().await.unwrap();
    let v1 = first["version"].as_i64().unwrap();
    let t = Instant::now();
    let r = poll(v1).await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "woken by the next set_event, not the timeout"
    );
    let second: Value = r.json().await.unwrap();
    assert!(second["version"].as_i64().unwrap() > v1);
    assert!(second["value"].as_i64().unwrap() > first["value"].as_i64().unwrap());
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // All events as JSON: portable values as they are, the pickled one as a marker.
    let all: Value = app
        .http
        .get(app.url(&format!("/v1/dbos/workflows/{id}/events")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["pickled"]["value"], json!({"undecodable": "py_pickle"}));
    assert_eq!(all["status"]["value"], "running");
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_approval_through_messages_and_links_is_received_once() {
    let Some((app, mut dbos)) = spawn_with_dbos(true, |_| {}).await else {
        return;
    };
    // Through the message endpoint, sent twice with one idempotency key.
    dbos.start("wf::msg", 2, 0).await;
    let send = |body: Value| {
        app.http
            .post(app.url("/v1/dbos/workflows/wf::msg/messages"))
            .json(&body)
            .send()
    };
    let body = json!({"topic": "approval", "body": {"approved": true, "by": "api"}, "idempotency_key": "k1"});
    let a: Value = send(body.clone()).await.unwrap().json().await.unwrap();
    let b: Value = send(body).await.unwrap().json().await.unwrap();
    assert_eq!(
        (a["duplicate"].clone(), b["duplicate"].clone()),
        (json!(false), json!(true))
    );
    let out = dbos.result("wf::msg").await;
    assert_eq!(out["approval"], json!({"approved": true, "by": "api"}));
    assert_eq!(out["again"], Value::Null, "received exactly once");
    let status: Value = app
        .http
        .get(app.url("/v1/dbos/workflows/wf::msg"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "SUCCESS");
    assert_eq!(status["output"], out);

    // Through an approval link: approve, then the reject link of the same pair is a no-op.
    dbos.start("wf::link", 2, 0).await;
    let minted: Value = app
        .http
        .post(app.url("/v1/dbos/workflows/wf::link/approval-links"))
        .json(&json!({"topic": "approval"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = &minted["links"][0];
    let use_link = |url: &str| {
        app.http
            .post(app.url(url))
            .json(&json!({"comment": "ok"}))
            .send()
    };
    let yes: Value = use_link(link["approve_url"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(yes["status"], "recorded");
    let no: Value = use_link(link["reject_url"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (no["status"].as_str(), no["decision"].as_str()),
        (Some("already_decided"), Some("approve"))
    );
    let out = dbos.result("wf::link").await;
    assert_eq!(out["approval"]["approved"], true);
    assert_eq!(out["approval"]["comment"], "ok");
    assert_eq!(out["again"], Value::Null, "received exactly once");
    // A message to a workflow DBOS does not know is a 404.
    let r = app
        .http
        .post(app.url("/v1/dbos/workflows/nope/messages"))
        .json(&json!({"topic": "approval", "body": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_listener_killed_mid_stream_loses_and_repeats_nothing() {
    let Some((app, mut dbos)) = spawn_with_dbos(true, |_| {}).await else {
        return;
    };
    let id = "wf::fault";
    dbos.start(id, 60, 25).await;
    let path = format!("/v1/dbos/workflows/{}/streams/output", enc(id));
    let mut sse = app.sse(&path, None).await;
    let mut got: Vec<(i64, Value)> = collect_events(&mut sse, 10, Duration::from_secs(30))
        .await
        .iter()
        .map(|e| {
            (
                e.id.parse().unwrap(),
                serde_json::from_str(&e.data).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kill_dbos_listener(&dbos.db_url).await,
        1,
        "listener terminated"
    );
    got.extend(read_to_end(&mut sse, Duration::from_secs(60)).await);
    assert_eq!(got, tokens(0..60));
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_app_without_listen_notify_is_delivered_by_rechecks() {
    let Some((app, mut dbos)) = spawn_with_dbos(false, |_| {}).await else {
        return;
    };
    let id = "wf-quiet";
    dbos.start(id, 10, 50).await;
    let t = Instant::now();
    let mut sse = app
        .sse(&format!("/v1/dbos/workflows/{id}/streams/output"), None)
        .await;
    let got = read_to_end(&mut sse, Duration::from_secs(30)).await;
    assert_eq!(got, tokens(0..10));
    // Without notifications, delivery waits for the re-check (1 s by default for such apps).
    eprintln!(
        "no LISTEN/NOTIFY: stream delivered and ended after {:?}",
        t.elapsed()
    );
    dbos.quit().await;
}

#[tokio::test]
async fn dbos_workflow_started_through_flowgate_runs_on_the_apps_queue() {
    let Some((app, dbos)) = spawn_with_dbos(true, |_| {}).await else {
        return;
    };
    let start = |body: Value| {
        app.http
            .post(app.url("/v1/dbos/workflows"))
            .json(&body)
            .send()
    };
    let body = json!({"workflow": "greet", "queue": "flowgate", "args": ["ada"],
                      "kwargs": {"punctuation": "?"}, "id": "wf::greet"});
    let r = start(body.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    // The DBOS app's queue worker runs it: its stream ends, its output is there.
    let mut sse = app
        .sse(
            &format!("/v1/dbos/workflows/{}/streams/output", enc("wf::greet")),
            None,
        )
        .await;
    let got = read_to_end(&mut sse, Duration::from_secs(60)).await;
    assert_eq!(got, vec![(0, json!("hello ada?"))]);
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app.get_json("/v1/dbos/workflows/wf::greet").await;
        if status["status"] == "SUCCESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["output"], json!({"hello": "ada"}));
    // The same id again does not start a second one.
    let again = start(body).await.unwrap();
    assert_eq!(again.status(), 200);
    let bad = start(json!({"workflow": "greet"})).await.unwrap();
    assert_eq!(bad.status(), 400);
    // `null` for the optional `kwargs` reads as absent, as the document's schema says.
    let nulls = json!({"workflow": "greet", "queue": "flowgate", "args": ["bob"],
                       "kwargs": null, "id": "wf::nulls"});
    assert_eq!(start(nulls).await.unwrap().status(), 201);
    dbos.quit().await;
}
