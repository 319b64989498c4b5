//! In-process operations checks: the SSE connection limit, metrics, the admin listener, and
//! readiness while draining.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sse_limit_returns_503_with_retry_after() {
    let app = spawn_app_with(|c| c.max_sse = 2).await;
    app.create_run("r").await;
    let a = app.sse("/v1/workflows/r/streams/s", None).await;
    let _b = app.sse("/v1/workflows/r/streams/s", None).await;
    let r = app
        .http
        .get(app.url("/v1/workflows/r/streams/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("too_many_connections"));
    // A closed connection frees its slot.
    drop(a);
    let mut ok = false;
    for _ in 0..50 {
        let r = app
            .http
            .get(app.url("/v1/workflows/r/streams/s"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the slot was released");
}

#[tokio::test]
async fn metrics_count_the_push_path() {
    let app = spawn_app().await;
    app.create_run("r").await;
    let mut sub = app.sse("/v1/workflows/r/streams/s", None).await;
    app.append("r", "s", &[json!(1), json!(2), json!(3)]).await;
    assert_eq!(
        collect_events(&mut sub, 3, Duration::from_secs(10))
            .await
            .len(),
        3
    );
    let text = metrics_text(&app).await;
    let value = |name: &str| metric(&text, name);
    assert_eq!(value("flowgate_sse_connections"), 1.0);
    assert_eq!(value("flowgate_records_appended_total"), 3.0);
    assert_eq!(value("flowgate_records_delivered_total"), 3.0);
    assert_eq!(value("flowgate_listener_connected"), 1.0);
    // Exported (its count depends on whether records came by broadcast or by catch-up).
    value("flowgate_delivery_seconds_count");
    // The append went through the group committer: at least one batch, holding it.
    let (batches, writes) = (
        value("flowgate_commit_batch_writes_count"),
        value("flowgate_commit_batch_writes_sum"),
    );
    assert!(
        batches >= 1.0 && writes >= batches,
        "{batches} batches, {writes} writes"
    );
    assert!(text.contains("flowgate_workflows{status=\"PENDING\"} 1"));
    assert!(
        text.contains("flowgate_notes_published_total{kind=\"stream\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn admin_listener_serves_health_only() {
    let app = spawn_app_with(|c| c.admin_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = app
        .app
        .as_ref()
        .unwrap()
        .admin_addr
        .expect("admin address bound");
    let base = format!("http://{admin}");
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            app.http
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
    }
    assert_eq!(
        app.http
            .get(format!("{base}/v1/workflows/x"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let h: serde_json::Value = app
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(h["memory_mb"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn readiness_fails_while_draining() {
    let mut app = spawn_app().await;
    let running = app.app.take().unwrap();
    let state = running.state.clone();
    let base = app.base.clone();
    let stopper =
        tokio::spawn(running.graceful_shutdown(Duration::from_secs(2), Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(state.draining.is_cancelled());
    let r = app.http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let h = app
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200, "still serving during the delay");
    let report = stopper.await.unwrap();
    assert!(report.clean);
    assert_eq!(report.unfinished_workflows, 0);
}

/// Step durations and queue depth are exported once workflows run.
#[tokio::test]
async fn metrics_cover_steps_and_queues() {
    use crate::runtime_support::{finished, spawn_runtime_app, start};
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "progress", "id": "m1", "input": {"steps": 2, "fib": 10, "pause_ms": 0}});
    assert_eq!(start(&app.http, &app.base, body, "").await.0, 201);
    let row = finished(&app.http, &app.base, "m1", Duration::from_secs(30)).await;
    assert_eq!(row["status"], "SUCCESS");
    let text = metrics_text(&app).await;
    let count = metric(&text, "flowgate_step_seconds_count");
    assert!(count >= 2.0, "both steps observed: {count}");
    assert!(text.contains("# TYPE flowgate_queue_depth gauge"));
}

/// The `/metrics` text.
async fn metrics_text(app: &TestApp) -> String {
    app.http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of an unlabelled metric line `name <value>` (panics, showing the text, if absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}
