//! Bad input: every case is a 4xx with a JSON error naming the problem, and changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn expect_error(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
) -> Value {
    let mut req = app.http.request(method.clone(), app.url(path));
    if let Some(b) = body {
        req = req
            .body(b.to_string())
            .header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), status, "{method} {path}");
    let v: Value = r
        .json()
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: JSON error body"));
    assert_eq!(v["error"]["code"], json!(code), "{method} {path}: {v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    v
}

async fn stored(app: &TestApp) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM flowgate.workflows), (SELECT count(*) FROM flowgate.stream_records),
                (SELECT count(*) FROM flowgate.events), (SELECT count(*) FROM flowgate.messages)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_and_changes_nothing() {
    let app = spawn_app_with(|c| {
        c.max_body = 64 * 1024;
        c.max_value = 1024;
        c.max_batch = 10;
    })
    .await;
    app.create_run("r").await;
    app.append("r", "s", &[json!(1), json!(2)]).await;
    let before = stored(&app).await;
    let long = "k".repeat(129);
    use Method as M;

    let v = expect_error(
        &app,
        M::GET,
        "/v1/workflows/bad%7Cid/streams/s",
        None,
        &[],
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(v["error"]["field"], json!("id"));
    let v = expect_error(
        &app,
        M::GET,
        &format!("/v1/workflows/r/streams/{long}"),
        None,
        &[],
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(v["error"]["field"], json!("key"));
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/nope/streams/s",
        None,
        &[],
        404,
        "run_not_found",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/nope/events",
        None,
        &[],
        404,
        "run_not_found",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/nope/events/k?timeout=1",
        None,
        &[],
        404,
        "run_not_found",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/nope/streams/s/poll?timeout=1",
        None,
        &[],
        404,
        "run_not_found",
    )
    .await;
    let v = expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/streams/s?from=99",
        None,
        &[],
        400,
        "offset_out_of_range",
    )
    .await;
    assert_eq!(v["error"]["field"], json!("from"));
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/streams/s?from=-1",
        None,
        &[],
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/streams/s/poll?from=abc",
        None,
        &[],
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/streams/s/poll?timeout=soon",
        None,
        &[],
        400,
        "invalid_field",
    )
    .await;
    let v = expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/streams/s",
        None,
        &[("last-event-id", "x7")],
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(v["error"]["field"], json!("Last-Event-ID"));
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/streams/s",
        None,
        &[("last-event-id", "50")],
        400,
        "offset_out_of_range",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/workflows/r/events/k?after=1.5",
        None,
        &[],
        400,
        "invalid_field",
    )
    .await;

    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/streams/s",
        Some("[1, 2"),
        &[],
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/streams/s",
        Some("{\"a\":1}"),
        &[],
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/streams/s",
        Some("[]"),
        &[],
        400,
        "invalid_field",
    )
    .await;
    let eleven = serde_json::to_string(&vec![1; 11]).unwrap();
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/streams/s",
        Some(&eleven),
        &[],
        413,
        "batch_too_large",
    )
    .await;
    let big_value = serde_json::to_string(&vec!["x".repeat(2000)]).unwrap();
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/streams/s",
        Some(&big_value),
        &[],
        413,
        "value_too_large",
    )
    .await;
    let huge = serde_json::to_string(&vec!["y".repeat(100 * 1024)]).unwrap();
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/streams/s",
        Some(&huge),
        &[],
        413,
        "body_too_large",
    )
    .await;
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/nope/streams/s",
        Some("[1]"),
        &[],
        404,
        "run_not_found",
    )
    .await;
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/nope/streams/s/close",
        None,
        &[],
        404,
        "run_not_found",
    )
    .await;

    expect_error(
        &app,
        M::PUT,
        "/v1/workflows/r/events/k",
        Some("nope"),
        &[],
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        &app,
        M::PUT,
        "/v1/workflows/nope/events/k",
        Some("1"),
        &[],
        404,
        "run_not_found",
    )
    .await;
    expect_error(
        &app,
        M::PUT,
        &format!("/v1/workflows/r/events/{long}"),
        Some("1"),
        &[],
        400,
        "invalid_field",
    )
    .await;
    let v = expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/messages",
        Some("{\"topic\":\"a b\",\"body\":1}"),
        &[],
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(v["error"]["field"], json!("topic"));
    let v = expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/messages",
        Some("{\"topic\":\"t\"}"),
        &[],
        400,
        "invalid_json",
    )
    .await;
    assert_eq!(v["error"]["field"], json!("body"));
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/nope/messages",
        Some("{\"topic\":\"t\",\"body\":1}"),
        &[],
        404,
        "run_not_found",
    )
    .await;
    let key = format!("{{\"topic\":\"t\",\"body\":1,\"idempotency_key\":\"{long}\"}}");
    expect_error(
        &app,
        M::POST,
        "/v1/workflows/r/messages",
        Some(&key),
        &[],
        400,
        "invalid_field",
    )
    .await;

    expect_error(
        &app,
        M::PUT,
        "/v1/workflows/r",
        Some("{\"workflow\":\"other\"}"),
        &[],
        409,
        "conflict",
    )
    .await;
    expect_error(
        &app,
        M::PUT,
        "/v1/workflows/r2",
        Some("{}"),
        &[],
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        &app,
        M::GET,
        "/v1/nothing-here",
        None,
        &[],
        404,
        "not_found",
    )
    .await;
    expect_error(
        &app,
        M::DELETE,
        "/v1/workflows/r/streams/s",
        None,
        &[],
        405,
        "method_not_allowed",
    )
    .await;

    assert_eq!(
        stored(&app).await,
        before,
        "rejected requests stored nothing"
    );
}
