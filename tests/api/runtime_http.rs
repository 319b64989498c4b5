//! Workflow endpoints on an in-process server: validation, 404, idempotent start, 409,
//! `?wait`, cancel, listing, step retries.

use std::time::Duration;

use serde_json::{json, Value};

use crate::runtime_support::*;

#[tokio::test]
async fn invalid_input_is_422_naming_every_field_and_unknown_workflow_is_404() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "progress", "input": {"steps": "x", "fib": 99, "bogus": 1}});
    let (status, v, _) = start(&app.http, &app.base, body, "").await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_input");
    let mut fields: Vec<&str> = v["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["input.bogus", "input.fib", "input.steps"]);

    let (status, v, _) = start(&app.http, &app.base, json!({"workflow": "nope"}), "").await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["field"], "workflow");
    let (status, v, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "progress", "queue": "nope"}),
        "",
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(v["error"]["field"], "queue");
    let (status, _, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "progress"}),
        "?wait=x",
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn same_id_same_input_is_200_and_other_input_is_409() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "approval", "id": "same", "input": {"timeout_secs": 60}});
    let (status, v, loc) = start(&app.http, &app.base, body.clone(), "").await;
    assert_eq!((status, v["id"].as_str()), (201, Some("same")));
    assert_eq!(loc.as_deref(), Some("/v1/workflows/same"));
    let (status, v, _) = start(&app.http, &app.base, body, "").await;
    assert_eq!((status, v["id"].as_str()), (200, Some("same")));
    let other = json!({"workflow": "approval", "id": "same", "input": {"timeout_secs": 61}});
    let (status, v, _) = start(&app.http, &app.base, other, "").await;
    assert_eq!(status, 409);
    assert_eq!(v["error"]["field"], "id");
}

#[tokio::test]
async fn wait_returns_200_with_output_or_202_with_location() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "progress", "input": {"steps": 2, "fib": 5, "pause_ms": 0}});
    let (status, v, _) = start(&app.http, &app.base, body, "?wait=30").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "SUCCESS");
    assert_eq!(v["output"], json!({"steps": 2, "sum": 10}));

    let (status, v, loc) = start(
        &app.http,
        &app.base,
        json!({"workflow": "approval"}),
        "?wait=0.2",
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap();
    assert_eq!(loc, Some(format!("/v1/workflows/{id}")));
    assert_eq!(v["status"], "PENDING");
}

#[tokio::test]
async fn cancel_stops_a_workflow_before_its_next_step() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "crashy", "id": "c1", "input": {"steps": 100, "delay_ms": 50, "recv_at": []}});
    assert_eq!(start(&app.http, &app.base, body, "").await.0, 201);
    let steps = "SELECT count(*) FROM flowgate.steps WHERE workflow_id = 'c1'";
    wait_count(&app.pool, steps, 4, Duration::from_secs(20)).await;
    let r = app
        .http
        .post(app.url("/v1/workflows/c1/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "CANCELLED");
    let at_cancel: i64 = sqlx::query_scalar(steps)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later: i64 = sqlx::query_scalar(steps)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(at_cancel, later, "steps were recorded after the cancel");
    let row = finished(&app.http, &app.base, "c1", Duration::from_secs(5)).await;
    assert_eq!(row["status"], "CANCELLED");

    // A workflow waiting for a message is woken by the cancel and records nothing more.
    let (_, v, _) = start(&app.http, &app.base, json!({"workflow": "approval"}), "").await;
    let id = v["id"].as_str().unwrap().to_string();
    let q = format!("SELECT count(*) FROM flowgate.steps WHERE workflow_id = '{id}'");
    wait_count(&app.pool, &q, 3, Duration::from_secs(10)).await;
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{id}/messages")))
        .json(&json!({"topic": "approval", "body": {"approved": true, "comment": "late"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let consumed: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM flowgate.messages WHERE workflow_id = '{id}' AND consumed_at IS NOT NULL"
    ))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(consumed, 0);

    let r = app
        .http
        .post(app.url("/v1/workflows/missing/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn list_filters_and_paginates_and_types_hide_test_workflows() {
    let app = spawn_runtime_app(|_| {}).await;
    for i in 0..3 {
        let body = json!({"workflow": "approval", "id": format!("a{i}")});
        assert_eq!(start(&app.http, &app.base, body, "").await.0, 201);
    }
    let body = json!({"workflow": "progress", "input": {"steps": 1, "fib": 1}});
    assert_eq!(start(&app.http, &app.base, body, "?wait=20").await.0, 200);
    let page: Value = app
        .http
        .get(app.url("/v1/workflows?workflow=approval&limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = page["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a2", "a1"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page: Value = app
        .http
        .get(app.url(&format!(
            "/v1/workflows?workflow=approval&limit=2&cursor={cursor}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["workflows"][0]["id"], "a0");
    assert_eq!(page["workflows"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_null());
    let done: Value = app
        .http
        .get(app.url("/v1/workflows?status=SUCCESS"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(done["workflows"][0]["workflow"], "progress");
    for bad in ["status=NOPE", "limit=0", "limit=9999", "cursor=zzz"] {
        let r = app
            .http
            .get(app.url(&format!("/v1/workflows?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let types: Value = app
        .http
        .get(app.url("/v1/workflow-types"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = types["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["approval", "fanout", "progress", "tokens"]);
    assert_eq!(
        types["workflows"][2]["input_schema"]["properties"]["steps"]["default"],
        10
    );
}

#[tokio::test]
async fn steps_retry_with_backoff_and_record_the_final_failure() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "flaky", "input": {"fail_times": 2, "max_attempts": 3}});
    let (status, v, _) = start(&app.http, &app.base, body, "?wait=20").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["output"], json!({"tries": 3}));

    let body = json!({"workflow": "flaky", "input": {"fail_times": 5, "max_attempts": 2}});
    let (_, v, _) = start(&app.http, &app.base, body, "?wait=20").await;
    assert_eq!(v["status"], "ERROR", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failure 2"),
        "{v}"
    );
    let id = v["id"].as_str().unwrap();
    let err: Value = sqlx::query_scalar(
        "SELECT error FROM flowgate.steps WHERE workflow_id = $1 AND name = 'flaky'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(err, json!({"message": "failure 2"}));
}
