//! N-of-M approvals in the `approval` demo, decided over HTTP through approval links minted
//! for several approvers: distinct approvers only, one rejection ends it, reuse is a no-op.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::runtime_support::*;

async fn start_approval(app: &TestApp, input: Value) -> String {
    let (status, v, _) = start(
        &app.http,
        &app.base,
        json!({"workflow": "approval", "input": input}),
        "",
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(v["token"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// `(approve_url, reject_url)` per approver.
async fn links(app: &TestApp, run: &str, approvers: &[&str]) -> Vec<(String, String)> {
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{run}/approval-links")))
        .json(&json!({"topic": "approval", "approvers": approvers}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                app.url(l["approve_url"].as_str().unwrap()),
                app.url(l["reject_url"].as_str().unwrap()),
            )
        })
        .collect()
}

/// The run's decision output without its time (checked to be there).
fn decision(row: &Value) -> Value {
    let mut out = row["output"].clone();
    let at = out["decided_at"].take();
    assert!(at.as_str().is_some_and(|t| t.contains('T')), "{row}");
    out.as_object_mut().unwrap().remove("decided_at");
    out
}

async fn use_link(app: &TestApp, url: &str, comment: &str) -> Value {
    let r = app
        .http
        .post(url)
        .json(&json!({"comment": comment}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn consumed(app: &TestApp, run: &str, n: i64) {
    let sql = format!(
        "SELECT count(*) FROM flowgate.messages WHERE workflow_id = '{run}' AND consumed_at IS NOT NULL"
    );
    wait_count(&app.pool, &sql, n, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn three_of_four_distinct_approvers_approve() {
    let app = spawn_runtime_app(|_| {}).await;
    let run = start_approval(&app, json!({"required": 3, "timeout_secs": 120})).await;
    let l = links(&app, &run, &["alice", "bob", "carol", "dave"]).await;
    assert_eq!(use_link(&app, &l[0].0, "a").await["status"], "recorded");
    // Alice's reject link is spent with her approve link.
    assert_eq!(
        use_link(&app, &l[0].1, "no").await["status"],
        "already_decided"
    );
    assert_eq!(use_link(&app, &l[1].0, "b").await["status"], "recorded");
    // A fresh link for alice: a second approval of hers does not count.
    let again = links(&app, &run, &["alice"]).await;
    assert_eq!(
        use_link(&app, &again[0].0, "a2").await["status"],
        "recorded"
    );
    consumed(&app, &run, 3).await;
    let row: Value = app
        .http
        .get(app.url(&format!("/v1/workflows/{run}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(row["status"], "PENDING", "{row}");
    let events: Value = app
        .http
        .get(app.url(&format!("/v1/workflows/{run}/events")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["status"]["value"], "2 of 3 approvals");
    assert_eq!(
        events["request"]["value"],
        json!({"title": "Deploy to production", "required": 3})
    );
    assert_eq!(use_link(&app, &l[2].0, "c").await["status"], "recorded");
    let row = finished(&app.http, &app.base, &run, Duration::from_secs(30)).await;
    assert_eq!(
        decision(&row),
        json!({"approved": true, "outcome": "approved", "comment": "c", "decided_by": "carol",
            "approvers": ["alice", "bob", "carol"]})
    );
}

#[tokio::test]
async fn one_rejection_ends_an_n_of_m_approval() {
    let app = spawn_runtime_app(|_| {}).await;
    let run = start_approval(&app, json!({"required": 2, "timeout_secs": 120})).await;
    let l = links(&app, &run, &["alice", "bob", "carol"]).await;
    use_link(&app, &l[0].0, "fine").await;
    use_link(&app, &l[1].1, "not today").await;
    let row = finished(&app.http, &app.base, &run, Duration::from_secs(30)).await;
    assert_eq!(
        decision(&row),
        json!({"approved": false, "outcome": "rejected", "comment": "not today", "decided_by": "bob",
            "approvers": ["alice"], "rejected_by": "bob"})
    );
    assert_eq!(row["outcome"], "rejected");
    // Too few approvals before the timeout: rejected as timed out, listing who approved.
    let run = start_approval(&app, json!({"required": 2, "timeout_secs": 2})).await;
    let l = links(&app, &run, &["alice", "bob"]).await;
    use_link(&app, &l[0].0, "ok").await;
    let row = finished(&app.http, &app.base, &run, Duration::from_secs(30)).await;
    assert_eq!(
        decision(&row),
        json!({"approved": false, "outcome": "timed_out", "comment": "timed out", "approvers": ["alice"]})
    );
    assert_eq!(row["outcome"], "timed_out");
}

#[tokio::test]
async fn required_is_validated() {
    let app = spawn_runtime_app(|_| {}).await;
    for bad in [json!(0), json!(51), json!("two")] {
        let (status, v, _) = start(
            &app.http,
            &app.base,
            json!({"workflow": "approval", "input": {"required": bad}}),
            "",
        )
        .await;
        assert_eq!(status, 422, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "invalid_input");
    }
}
