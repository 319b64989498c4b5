//! Tags and the live run list: filters with one run that passes and one that must not,
//! status changes pushed as they commit, and resume with `Last-Event-ID` across commits
//! that land out of order.

use std::time::Duration;

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::runtime_support::*;

async fn next(sse: &mut (impl Stream<Item = Event> + Unpin)) -> Event {
    tokio::time::timeout(Duration::from_secs(10), sse.next())
        .await
        .expect("a list event in time")
        .expect("the list stays open")
}

/// The next `event: run` (skipping nothing else: the list sends only runs).
async fn next_run(sse: &mut (impl Stream<Item = Event> + Unpin)) -> (Value, String) {
    let ev = next(sse).await;
    assert_eq!(ev.event, "run", "{ev:?}");
    (serde_json::from_str(&ev.data).unwrap(), ev.id)
}

/// Nothing arrives for `d`.
async fn quiet(sse: &mut (impl Stream<Item = Event> + Unpin), d: Duration) {
    if let Ok(Some(ev)) = tokio::time::timeout(d, sse.next()).await {
        panic!("unexpected list event {ev:?}");
    }
}

/// Sets an external run's status from SQL and announces it like any producer would.
async fn set_status(pool: &sqlx::PgPool, id: &str, status: &str) {
    sqlx::query("UPDATE flowgate.workflows SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(pool)
        .await
        .unwrap();
    notify_status(pool, id).await;
}

async fn notify_status(pool: &sqlx::PgPool, id: &str) {
    sqlx::query("SELECT pg_notify('flowgate', 'test|w|' || $1 || '||0')")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
}

async fn put_run(app: &TestApp, id: &str, tags: Value) -> reqwest::Response {
    app.http
        .put(app.url(&format!("/v1/workflows/{id}")))
        .json(&json!({"workflow": "external", "tags": tags}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn tags_are_kept_validated_and_filter_the_list() {
    let app = spawn_app().await;
    assert_eq!(
        put_run(&app, "a", json!(["team:red", "batch-1"]))
            .await
            .status(),
        201
    );
    assert_eq!(put_run(&app, "b", json!(["team:blue"])).await.status(), 201);
    let run = app.get_json("/v1/workflows/a").await;
    assert_eq!(run["tags"], json!(["team:red", "batch-1"]));

    let list = |q: &'static str| {
        let http = app.http.clone();
        let url = app.url(&format!("/v1/workflows{q}"));
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["workflows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("?tag=team:red").await, ["a"]);
    assert_eq!(list("?tag=team:blue").await, ["b"]);
    assert_eq!(list("?tag=nobody").await, Vec::<String>::new());
    assert_eq!(list("").await, ["b", "a"]);

    for (bad, why) in [
        (
            json!((0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            "11 tags",
        ),
        (json!(["a b"]), "a space"),
        (json!([""]), "empty"),
        (json!(["x".repeat(65)]), "65 characters"),
    ] {
        let r = put_run(&app, "c", bad).await;
        assert_eq!(r.status(), 400, "{why}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["field"], "tags", "{why}: {e}");
    }
    let r = app
        .http
        .get(app.url("/v1/workflows?tag=a%7Cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM flowgate.workflows")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 2, "refused requests stored nothing");
}

/// The document marks `tags` nullable: `null` means no tags, on PUT and on a start.
#[tokio::test]
async fn null_tags_mean_none() {
    let app = spawn_runtime_app(|_| {}).await;
    assert_eq!(put_run(&app, "n", Value::Null).await.status(), 201);
    let (s, _, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "progress", "input": {"steps": 1, "pause_ms": 0}, "id": "s", "tags": null}),
        "?wait=30",
    )
    .await;
    assert_eq!(s, 200);
    for id in ["n", "s"] {
        let run = app.get_json(&format!("/v1/workflows/{id}")).await;
        assert_eq!(run["tags"], json!([]), "{id}: {run}");
    }
}

#[tokio::test]
async fn live_list_pushes_changes_of_matching_runs_only() {
    let app = spawn_runtime_app(|_| {}).await;
    let (s, _, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "progress", "input": {"steps": 1, "pause_ms": 0}, "id": "old", "tags": ["watch"]}),
        "?wait=30",
    )
    .await;
    assert_eq!(s, 200);

    let mut tagged = app.sse("/v1/workflows?tag=watch", None).await;
    let mut all = app.sse("/v1/workflows", None).await;
    let first = next(&mut tagged).await;
    assert_eq!(first.event, "runs");
    let runs: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(runs["runs"][0]["id"], "old");
    assert_eq!(runs["runs"][0]["status"], "SUCCESS");
    assert_eq!(next(&mut all).await.event, "runs");

    // One untagged run, then one tagged: the tagged list sees only the second.
    start(
        &app.http,
        &app.base,
        json!({"workflow": "progress", "input": {"steps": 1, "pause_ms": 0}, "id": "other"}),
        "?wait=30",
    )
    .await;
    start(
        &app.http,
        &app.base,
        json!({"workflow": "progress", "input": {"steps": 1, "pause_ms": 0}, "id": "mine", "tags": ["watch"]}),
        "?wait=30",
    )
    .await;
    let mut seen = Vec::new();
    while seen
        .last()
        .map(|(id, s): &(String, String)| (id.as_str(), s.as_str()))
        != Some(("mine", "SUCCESS"))
    {
        let (run, _) = next_run(&mut tagged).await;
        seen.push((
            run["id"].as_str().unwrap().to_string(),
            run["status"].as_str().unwrap().to_string(),
        ));
    }
    assert!(
        seen.iter().all(|(id, _)| id == "mine"),
        "tagged list: {seen:?}"
    );
    assert_eq!(
        seen.first().unwrap().1,
        "PENDING",
        "the start is pushed too: {seen:?}"
    );
    quiet(&mut tagged, Duration::from_millis(300)).await;

    let mut ids = Vec::new();
    while ids
        .iter()
        .filter(|(id, s): &&(String, String)| id == "mine" && s == "SUCCESS")
        .count()
        == 0
    {
        let (run, _) = next_run(&mut all).await;
        ids.push((
            run["id"].as_str().unwrap().to_string(),
            run["status"].as_str().unwrap().to_string(),
        ));
    }
    assert!(
        ids.contains(&("other".into(), "SUCCESS".into())),
        "unfiltered list: {ids:?}"
    );
}

#[tokio::test]
async fn resume_after_out_of_order_commits_loses_and_repeats_nothing() {
    let app = spawn_app().await;
    for id in ["x", "y"] {
        assert_eq!(put_run(&app, id, json!(["t"])).await.status(), 201);
    }
    let mut list = app.sse("/v1/workflows?tag=t", None).await;
    let first = next(&mut list).await;
    assert_eq!(first.event, "runs");

    // x's change starts first but commits last.
    let mut slow = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE flowgate.workflows SET status = 'SUCCESS' WHERE id = 'x'")
        .execute(&mut *slow)
        .await
        .unwrap();
    set_status(&app.pool, "y", "ERROR").await;
    let (run, id_after_y) = next_run(&mut list).await;
    assert_eq!(
        (run["id"].as_str(), run["status"].as_str()),
        (Some("y"), Some("ERROR"))
    );
    assert!(!id_after_y.is_empty());
    drop(list);

    slow.commit().await.unwrap();
    notify_status(&app.pool, "x").await;
    set_status(&app.pool, "y", "CANCELLED").await;

    let mut resumed = app.sse("/v1/workflows?tag=t", Some(&id_after_y)).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let (run, _) = next_run(&mut resumed).await;
        got.push(format!(
            "{}:{}",
            run["id"].as_str().unwrap(),
            run["status"].as_str().unwrap()
        ));
    }
    got.sort();
    assert_eq!(got, ["x:SUCCESS", "y:CANCELLED"]);
    quiet(&mut resumed, Duration::from_millis(300)).await;

    let r = app
        .http
        .get(app.url("/v1/workflows"))
        .header("accept", "text/event-stream")
        .header("last-event-id", "not-a-position")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn one_status_change_costs_one_read_however_many_lists_are_open() {
    let app = spawn_app_with(|c| c.max_sse_per_client = 200).await;
    assert_eq!(put_run(&app, "r", json!(["t"])).await.status(), 201);
    let mut lists = Vec::new();
    for i in 0..100 {
        let q = if i % 2 == 0 {
            "/v1/workflows?tag=t"
        } else {
            "/v1/workflows"
        };
        let mut l = app.sse(q, None).await;
        assert_eq!(next(&mut l).await.event, "runs");
        lists.push(l);
    }
    // Let every list finish its catch-up read before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = feed_reads(&app).await;
    set_status(&app.pool, "r", "SUCCESS").await;
    for l in lists.iter_mut() {
        let (run, _) = next_run(l).await;
        assert_eq!(run["status"], "SUCCESS");
    }
    let after = feed_reads(&app).await;
    eprintln!(
        "feed reads for one status change, 100 lists open: {}",
        after - before
    );
    assert!(
        after - before <= 2,
        "reads for one change with 100 lists: {}",
        after - before
    );
}

/// Feed reads so far, from the process's metrics.
async fn feed_reads(app: &TestApp) -> i64 {
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
        .find(|l| l.starts_with("flowgate_run_feed_reads_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as i64)
        .unwrap_or_else(|| panic!("no flowgate_run_feed_reads_total in metrics"))
}
