//! Demo workflows end to end on an in-process server: approval messages and timeout, the
//! token stream, fan-out over the queue, and `/healthz` while CPU steps run.

use std::time::Duration;

use serde_json::{json, Value};

use crate::runtime_support::*;

#[tokio::test]
async fn approval_consumes_its_message_and_times_out_without_one() {
    let app = spawn_runtime_app(|_| {}).await;
    let (_, v, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "approval", "input": {}}),
        "",
    )
    .await;
    let id = v["id"].as_str().unwrap().to_string();
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{id}/messages")))
        .json(&json!({"topic": "approval", "body": {"approved": true, "comment": "ship it"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let row = finished(&app.http, &app.base, &id, Duration::from_secs(20)).await;
    assert_eq!(row["output"]["approved"], true);
    assert_eq!(row["output"]["comment"], "ship it");
    assert_eq!(row["outcome"], "approved");
    let events: Value = app
        .http
        .get(app.url(&format!("/v1/workflows/{id}/events")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        events["request"]["value"],
        json!({"title": "Deploy to production"})
    );
    assert_eq!(events["decision"]["value"], row["output"]);
    assert_eq!(events["progress"]["value"], json!(100));

    let body = json!({"workflow": "approval", "input": {"timeout_secs": 1}});
    let (status, v, _) = start(&app.http, &app.base, body, "?wait=20").await;
    assert_eq!(status, 200);
    assert_eq!(v["output"]["approved"], false);
    assert_eq!(v["output"]["comment"], "timed out");
    assert_eq!(v["outcome"], "timed_out");
}

#[tokio::test]
async fn tokens_streams_its_text_and_fanout_aggregates_children() {
    let app = spawn_runtime_app(|_| {}).await;
    let (status, v, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "tokens", "input": {"words": 60}}),
        "?wait=60",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["id"].as_str().unwrap();
    let text = v["output"]["text"].as_str().unwrap();
    assert_eq!(v["output"]["words"], 60);
    let recs = records(&app.pool, id, "output").await;
    assert_eq!(recs.len(), 60);
    assert!(recs.iter().enumerate().all(|(i, (o, _))| *o == i as i64));
    let joined: String = recs.iter().map(|(_, v)| v.as_str().unwrap()).collect();
    assert_eq!(joined, text);
    assert!(text.ends_with('.') && !text.ends_with(" ."));
    let closed: bool = sqlx::query_scalar(
        "SELECT closed FROM flowgate.streams WHERE workflow_id = $1 AND key = 'output'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(closed);
    // Same seed, same text.
    let (_, again, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "tokens", "input": {"words": 60, "rate": 1000}}),
        "?wait=60",
    )
    .await;
    assert_eq!(again["output"]["text"], text);

    let body = json!({"workflow": "fanout", "input": {"children": 3, "fib": 5, "pause_ms": 0}});
    let (status, v, _) = start(&app.http, &app.base, body, "?wait=60").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["output"]["children"], 3);
    let results = v["output"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results
        .iter()
        .all(|r| r["output"] == json!({"steps": 3, "sum": 15})));
    let children: i64 = sqlx::query_scalar("SELECT count(*) FROM flowgate.workflows WHERE parent_id = $1 AND queue = 'default' AND status = 'SUCCESS'")
        .bind(v["id"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(children, 3);
}

#[tokio::test]
async fn healthz_answers_while_cpu_steps_saturate_the_cores() {
    let app = spawn_runtime_app(|_| {}).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        // Far more work than the probes take; cancelled at the end.
        let body =
            json!({"workflow": "progress", "input": {"steps": 1000, "fib": 34, "pause_ms": 0}});
        let (status, v, _) = start(&app.http, &app.base, body, "").await;
        assert_eq!(status, 201);
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Wait until CPU steps are running, then probe.
    let q =
        "SELECT count(*) FROM flowgate.events WHERE key = 'status' AND value::text LIKE '\"step%'";
    wait_count(&app.pool, q, 1, Duration::from_secs(60)).await;
    for _ in 0..10 {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            app.http.get(app.url("/healthz")).send(),
        )
        .await
        .expect("healthz answered within 2 s")
        .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM flowgate.workflows WHERE status = 'PENDING'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(pending > 0, "the load ended before the probes");
    for id in ids {
        let r = app
            .http
            .post(app.url(&format!("/v1/workflows/{id}/cancel")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let row = finished(&app.http, &app.base, &id, Duration::from_secs(10)).await;
        assert_eq!(row["status"], "CANCELLED");
    }
}
