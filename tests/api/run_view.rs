//! What the run view is built on: a run's outcome beside its status (reported by the
//! workflow, by `finish` for external runs, or the status's own), its start and finish
//! times, and its steps over `/live` with durations.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::runtime_support::*;

/// A request with a bearer credential (empty: none needed on a keyless server).
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: &str,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn started(app: &TestApp, body: Value) -> String {
    let (status, v, _) = start(&app.http, &app.base, body, "").await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
        .into()
}

#[tokio::test]
async fn approval_runs_end_approved_rejected_or_timed_out_with_who_and_when() {
    let app = spawn_runtime_app(|_| {}).await;
    let id = started(
        &app,
        json!({"workflow": "approval", "input": {"timeout_secs": 60}}),
    )
    .await;
    let (status, v) = call(&app, "GET", &format!("/v1/workflows/{id}"), None, "").await;
    assert_eq!(status, 200);
    assert_eq!(v["outcome"], Value::Null, "no outcome while running: {v}");
    assert_eq!(v["finished_at"], Value::Null);
    time(&v["started_at"]);
    let body = json!({"topic": "approval", "approvers": ["Robin"]});
    let (status, links) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/approval-links"),
        Some(body),
        "",
    )
    .await;
    assert_eq!(status, 201, "{links}");
    let reject = links["links"][0]["reject_url"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        &app,
        "POST",
        &reject,
        Some(json!({"comment": "not today"})),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let run = finished(&app.http, &app.base, &id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "SUCCESS", "the workflow ran to its end");
    assert_eq!(run["outcome"], "rejected", "{run}");
    assert_eq!(run["output"]["outcome"], "rejected");
    assert_eq!(run["output"]["decided_by"], "Robin");
    assert_eq!(run["output"]["comment"], "not today");
    time(&run["output"]["decided_at"]);
    assert!(
        time(&run["started_at"]) <= time(&run["finished_at"]),
        "{run}"
    );

    let body = json!({"workflow": "approval", "input": {"timeout_secs": 1}});
    let (status, run, _) = start(&app.http, &app.base, body, "?wait=30").await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["outcome"], "timed_out", "{run}");
    assert_eq!(run["output"]["decided_by"], Value::Null, "nobody decided");

    let body = json!({"workflow": "progress", "input": {"steps": 1, "fib": 3, "pause_ms": 0}});
    let (_, run, _) = start(&app.http, &app.base, body, "?wait=30").await;
    assert_eq!(
        run["outcome"], "succeeded",
        "the status's own outcome: {run}"
    );

    let id = started(&app, json!({"workflow": "approval", "input": {}})).await;
    let (status, _) = call(
        &app,
        "POST",
        &format!("/v1/workflows/{id}/cancel"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 200);
    let run = finished(&app.http, &app.base, &id, Duration::from_secs(30)).await;
    assert_eq!(
        (run["status"].as_str(), run["outcome"].as_str()),
        (Some("CANCELLED"), Some("cancelled"))
    );
    time(&run["finished_at"]);
}

#[tokio::test]
async fn external_runs_finish_with_an_outcome_over_http_and_sql() {
    let app = spawn_runtime_app(|_| {}).await;
    app.create_run("ext-1").await;
    let path = "/v1/workflows/ext-1/finish";
    for bad in ["Rejected", "", "timed out", &"a".repeat(65)] {
        let body = json!({"status": "SUCCESS", "outcome": bad});
        let (status, v) = call(&app, "POST", path, Some(body), "").await;
        assert_eq!(status, 400, "{bad:?}: {v}");
        assert_eq!(v["error"]["field"], "outcome");
    }
    let body = json!({"status": "SUCCESS", "output": {"ok": false}, "outcome": "rejected"});
    let (status, _) = call(&app, "POST", path, Some(body.clone()), "").await;
    assert_eq!(status, 200);
    let (_, run) = call(&app, "GET", "/v1/workflows/ext-1", None, "").await;
    assert_eq!(
        (run["status"].as_str(), run["outcome"].as_str()),
        (Some("SUCCESS"), Some("rejected"))
    );
    time(&run["finished_at"]);
    let (status, _) = call(&app, "POST", path, Some(body), "").await;
    assert_eq!(status, 200, "finishing again the same way is a no-op");
    let other = json!({"status": "SUCCESS", "outcome": "approved"});
    let (status, v) = call(&app, "POST", path, Some(other), "").await;
    assert_eq!(status, 409, "{v}");

    for id in ["sql-1", "sql-2"] {
        sqlx::query("SELECT flowgate.ensure_run($1, 'external')")
            .bind(id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    sqlx::query("SELECT flowgate.finish_run('sql-1', 'ERROR', NULL, '{\"m\": 1}', 'timed_out')")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("SELECT flowgate.finish_run('sql-2', 'ERROR')")
        .execute(&app.pool)
        .await
        .unwrap();
    let bad = sqlx::query("SELECT flowgate.finish_run('sql-2', 'ERROR', NULL, NULL, 'No!')")
        .execute(&app.pool)
        .await;
    assert!(bad.is_err(), "the database refuses a malformed outcome too");
    let (_, a) = call(&app, "GET", "/v1/workflows/sql-1", None, "").await;
    let (_, b) = call(&app, "GET", "/v1/workflows/sql-2", None, "").await;
    assert_eq!(a["outcome"], "timed_out");
    assert_eq!(b["outcome"], "failed");
}

/// Reads `/live` frames until `done` says so (bounded).
async fn frames_until(
    stream: &mut (impl futures::Stream<Item = eventsource_stream::Event> + Unpin),
    done: impl Fn(&[eventsource_stream::Event]) -> bool,
) -> Vec<eventsource_stream::Event> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&out) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(ev)) => out.push(ev),
            _ => panic!(
                "live ended early: {:?}",
                out.iter().map(|e| &e.event).collect::<Vec<_>>()
            ),
        }
    }
    out
}

fn finished_status(evs: &[eventsource_stream::Event]) -> bool {
    evs.iter()
        .any(|e| e.event == "status" && e.data.contains("\"SUCCESS\""))
}

#[tokio::test]
async fn live_sends_each_step_with_its_duration_and_the_outcome() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "progress", "input": {"steps": 2, "fib": 5, "pause_ms": 60}});
    let id = started(&app, body).await;
    let mut live = app.sse(&format!("/v1/workflows/{id}/live"), None).await;
    let evs = frames_until(&mut live, |evs| {
        finished_status(evs) && evs.iter().filter(|e| e.event == "step").count() == 4
    })
    .await;
    let steps: Vec<Value> = evs
        .iter()
        .filter(|e| e.event == "step")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["fib", "pause", "fib", "pause"],
        "operation records are left out"
    );
    for s in &steps {
        let ms = s["duration_ms"].as_i64().unwrap();
        assert!(ms >= 0, "{s}");
        assert_eq!(
            ms,
            (time(&s["finished_at"]) - time(&s["started_at"])).num_milliseconds()
        );
        if s["name"] == "pause" {
            assert!(ms >= 60, "a pause step lasts its pause: {s}");
        }
        assert_eq!(s["error"], Value::Null);
    }
    let status: Value = evs
        .iter()
        .rev()
        .find(|e| e.event == "status")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .unwrap();
    assert_eq!(status["outcome"], "succeeded");
    time(&status["started_at"]);
    time(&status["finished_at"]);

    // Resuming from the last frame repeats no step; a fresh connection gets them all again.
    let last = evs.last().unwrap().id.clone();
    let mut again = app
        .sse(&format!("/v1/workflows/{id}/live"), Some(&last))
        .await;
    sqlx::query("SELECT flowgate.set_event($1, 'poke', '1')")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let evs = frames_until(&mut again, |evs| evs.iter().any(|e| e.event == "event")).await;
    assert!(evs.iter().all(|e| e.event != "step"), "{evs:?}");
    let mut fresh = app.sse(&format!("/v1/workflows/{id}/live"), None).await;
    frames_until(&mut fresh, |evs| {
        evs.iter().filter(|e| e.event == "step").count() == 4
    })
    .await;
}

#[tokio::test]
async fn a_failed_step_is_on_the_timeline_with_its_error() {
    let app = spawn_runtime_app(|_| {}).await;
    let body = json!({"workflow": "flaky", "input": {"fail_times": 5, "max_attempts": 2}});
    let id = started(&app, body).await;
    let mut live = app.sse(&format!("/v1/workflows/{id}/live"), None).await;
    let evs = frames_until(&mut live, |evs| {
        evs.iter().any(|e| e.event == "step")
            && evs
                .iter()
                .any(|e| e.event == "status" && e.data.contains("\"ERROR\""))
    })
    .await;
    let step: Value = evs
        .iter()
        .find(|e| e.event == "step")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .unwrap();
    assert_eq!(step["name"], "flaky");
    assert_eq!(step["error"]["message"], "failure 2");
    let status = evs.iter().rev().find(|e| e.event == "status").unwrap();
    let status: Value = serde_json::from_str(&status.data).unwrap();
    assert_eq!(status["outcome"], "failed");
}
