//! Events: latest value, versions, long-poll wake-up and timeout, SSE of changes, SQL producer.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

async fn put_event(app: &TestApp, run: &str, key: &str, value: Value) -> i64 {
    let r = app
        .http
        .put(app.url(&format!("/v1/workflows/{run}/events/{key}")))
        .json(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["version"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn versions_increase_and_list_shows_latest() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let v1 = put_event(&app, "r", "progress", json!(10)).await;
    let v2 = put_event(&app, "r", "progress", json!(20)).await;
    let v3 = put_event(&app, "r", "status", json!("busy")).await;
    assert!(v1 < v2 && v2 < v3);
    let all: Value = app
        .http
        .get(app.url("/v1/workflows/r/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all,
        json!({"progress": {"value": 20, "version": v2}, "status": {"value": "busy", "version": v3}})
    );
    // Without `after`, the current value comes back at once.
    let r: Value = app
        .http
        .get(app.url("/v1/workflows/r/events/progress"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"value": 20, "version": v2}));
}

#[tokio::test]
async fn long_poll_wakes_on_newer_version_and_times_out() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let v1 = put_event(&app, "r", "progress", json!(1)).await;
    let r = app
        .http
        .get(app.url(&format!(
            "/v1/workflows/r/events/progress?after={v1}&timeout=0.3"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let http = app.http.clone();
    let url = app.url(&format!(
        "/v1/workflows/r/events/progress?after={v1}&timeout=30"
    ));
    let waiter = tokio::spawn(async move { http.get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another key does not wake it with the wrong answer.
    put_event(&app, "r", "other", json!("x")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    // A SQL producer's write (through LISTEN/NOTIFY) wakes it.
    let v2: i64 = sqlx::query_scalar("SELECT flowgate.set_event('r', 'progress', '2'::jsonb)")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"value": 2, "version": v2})
    );
}

#[tokio::test]
async fn event_changes_over_sse_resume_by_version() {
    let app = spawn_app().await;
    app.create_run("r").await;
    put_event(&app, "r", "a", json!(1)).await;
    let mut sse = app.sse("/v1/workflows/r/events", None).await;
    let first = collect_events(&mut sse, 1, Duration::from_secs(10)).await;
    assert_eq!(first[0].event, "event");
    let v: Value = serde_json::from_str(&first[0].data).unwrap();
    assert_eq!((v["key"].as_str(), &v["value"]), (Some("a"), &json!(1)));
    put_event(&app, "r", "b", json!(2)).await;
    let next = collect_events(&mut sse, 1, Duration::from_secs(10)).await;
    let last_id = next[0].id.clone();
    drop(sse);
    put_event(&app, "r", "a", json!(3)).await;
    let mut again = app.sse("/v1/workflows/r/events", Some(&last_id)).await;
    let rest = collect_events(&mut again, 1, Duration::from_secs(10)).await;
    let v: Value = serde_json::from_str(&rest[0].data).unwrap();
    assert_eq!((v["key"].as_str(), &v["value"]), (Some("a"), &json!(3)));
}
