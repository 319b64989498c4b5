//! Values that once broke readers, and query numbers that once panicked: every value a
//! producer path accepts can be read back by every reader, or is refused with a 4xx; a
//! `timeout`/`wait` of any size is capped or refused, never a dropped connection.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::runtime_support::spawn_runtime_app;

/// A JSON array nested `depth` levels deep.
pub fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Reads `/live` until a `record` frame for `key` arrives; panics if the response aborts.
async fn live_record(app: &TestApp, run: &str, key: &str) -> Value {
    let mut live = app.sse(&format!("/v1/workflows/{run}/live"), None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, live.next())
            .await
            .expect("a record frame in time")
            .expect("the response did not abort");
        if ev.event == "record" {
            let v: Value = serde_json::from_str(&ev.data).expect("record data is JSON");
            if v["key"] == key {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn values_readers_cannot_represent_are_refused_at_append() {
    let app = spawn_app().await;
    app.create_run("r").await;
    for body in ["[1e400]", r#"["\ud800"]"#, &format!("[{}]", nested(200))] {
        let r = app
            .http
            .post(app.url("/v1/workflows/r/streams/output"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    // The run's live view still works after the attempts.
    app.append("r", "output", &[json!("ok")]).await;
    assert_eq!(live_record(&app, "r", "output").await["value"], "ok");
}

#[tokio::test]
async fn values_written_from_sql_are_readable_by_every_reader() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let deep = nested(200);
    sqlx::query("SELECT flowgate.set_event('r', 'deep', $1::jsonb)")
        .bind(&deep)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("SELECT flowgate.set_event('r', 'huge', '1e400'::jsonb)")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("SELECT flowgate.write_stream('r', 'output', $1::jsonb)")
        .bind(&deep)
        .execute(&app.pool)
        .await
        .unwrap();
    // All events: 200, and the deep value comes back as the same JSON text.
    let r = app
        .http
        .get(app.url("/v1/workflows/r/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains(&deep), "{}", &text[..text.len().min(200)]);
    // One event by long-poll.
    let r = app
        .http
        .get(app.url("/v1/workflows/r/events/deep?timeout=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(&deep));
    // Stream poll and /live.
    let r = app
        .http
        .get(app.url("/v1/workflows/r/streams/output/poll?timeout=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(&deep));
    let mut live = app.sse("/v1/workflows/r/live", None).await;
    let mut seen = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen != (true, true) {
        let ev = tokio::time::timeout_at(deadline, live.next())
            .await
            .expect("frames in time")
            .expect("the response did not abort");
        seen.0 |= ev.event == "record" && ev.data.contains(&deep);
        seen.1 |= ev.event == "event" && ev.data.contains("\"huge\"");
    }
}

#[tokio::test]
async fn huge_timeouts_and_waits_are_capped_not_panics() {
    let app = spawn_runtime_app(|c| c.max_wait = 0.2).await;
    app.create_run("r").await;
    for path in [
        "/v1/workflows/r/streams/s/poll?timeout=1e30",
        "/v1/workflows/r/events/k?timeout=1e30",
        "/v1/workflows/r?wait=1e30",
    ] {
        let r = app.http.get(app.url(path)).send().await.expect(path);
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let r = app
        .http
        .post(app.url("/v1/workflows?wait=1e30"))
        .json(&json!({"workflow": "approval", "input": {}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for bad in ["NaN", "inf", "-1", "1e400"] {
        let r = app
            .http
            .get(app.url(&format!("/v1/workflows/r/events/k?timeout={bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "timeout={bad}");
    }
}
