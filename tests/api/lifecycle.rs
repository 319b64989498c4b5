//! Retention: expired finished runs go with everything they own; pending, unexpired and
//! kept-forever runs stay; per-run overrides; idle external runs; old consumed messages.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use flowgate::lifecycle::{LockMode, RetentionConfig, SweepReport, Sweeper};

/// Tables holding rows owned by a run, with the column naming it.
pub const OWNED: [(&str, &str); 9] = [
    ("workflows", "id"),
    ("steps", "workflow_id"),
    ("events", "workflow_id"),
    ("messages", "workflow_id"),
    ("streams", "workflow_id"),
    ("stream_records", "workflow_id"),
    ("approval_uses", "workflow_id"),
    ("message_keys", "workflow_id"),
    ("workflows", "parent_id"),
];

/// Settings with this default retention and no background sweeper.
pub fn retention(secs: f64) -> RetentionConfig {
    RetentionConfig {
        retention: Duration::from_secs_f64(secs),
        gc_interval: Duration::ZERO,
        gc_pause: Duration::from_millis(1),
        gc_duty: 1.0,
        ..Default::default()
    }
}

/// One sweep now (waiting for any other sweeper).
pub async fn sweep(app: &TestApp, cfg: RetentionConfig) -> SweepReport {
    Sweeper::new(app.pool.clone(), cfg, None)
        .run_once(LockMode::Wait, &CancellationToken::new())
        .await
        .expect("sweep")
}

/// Rows of `table` whose `col` is `run`.
pub async fn rows(app: &TestApp, table: &str, col: &str, run: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM flowgate.{table} WHERE {col} = $1"
    ))
    .bind(run)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// An external run with a row in every table it can own (a child included), finished
/// with `status` unless `None`.
pub async fn populated_run(app: &TestApp, id: &str, status: Option<&str>) {
    app.create_run(id).await;
    app.append(id, "out", &[json!(1), json!("two"), json!({"three": 3})])
        .await;
    let ev = app
        .http
        .put(app.url(&format!("/v1/workflows/{id}/events/progress")))
        .json(&json!(50))
        .send()
        .await
        .unwrap();
    assert_eq!(ev.status(), 200);
    let m = app
        .http
        .post(app.url(&format!("/v1/workflows/{id}/messages")))
        .json(&json!({"topic": "t", "body": {"x": 1}, "idempotency_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 202);
    sqlx::query(
        "INSERT INTO flowgate.steps (workflow_id, step, name, output) VALUES ($1, 0, 's', '1');
         ",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO flowgate.approval_uses (nonce, workflow_id, topic, approver, decision)
         VALUES ($1 || '-nonce', $1, 't', 'ann', 'approve')",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO flowgate.message_keys VALUES ($1, 'old-key', 0, 't', md5('{}'));
         ",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO flowgate.workflows (id, workflow, status, parent_id)
         VALUES ($1 || '-child', 'w', 'SUCCESS', $1)",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    if let Some(s) = status {
        finish(app, id, json!({"status": s, "output": {"done": true}}), 200).await;
    }
}

/// `POST …/finish`; returns the body.
pub async fn finish(app: &TestApp, id: &str, body: Value, want: u16) -> Value {
    let r = app
        .http
        .post(app.url(&format!("/v1/workflows/{id}/finish")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), want, "finish {id}");
    r.json().await.unwrap()
}

/// Moves a run's (and its child's) last change `secs` into the past.
pub async fn age(app: &TestApp, id: &str, secs: i64) {
    sqlx::query(
        "UPDATE flowgate.workflows SET updated_at = now() - make_interval(secs => $2),
                created_at = now() - make_interval(secs => $2)
         WHERE id = $1 OR parent_id = $1",
    )
    .bind(id)
    .bind(secs as f64)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn assert_all(app: &TestApp, run: &str, present: bool) {
    for (table, col) in OWNED {
        let n = rows(app, table, col, run).await;
        assert_eq!(n > 0, present, "{table}.{col} = {run}: {n} rows");
    }
}

#[tokio::test]
async fn expired_runs_go_with_everything_they_own_and_the_rest_stays() {
    let app = spawn_app().await;
    populated_run(&app, "old", Some("SUCCESS")).await;
    populated_run(&app, "old-err", Some("ERROR")).await;
    populated_run(&app, "recent", Some("CANCELLED")).await;
    populated_run(&app, "pending", None).await;
    for id in ["old", "old-err", "pending"] {
        age(&app, id, 7200).await;
    }
    // A runtime-managed run waiting on a queue, old: never touched.
    sqlx::query(
        "INSERT INTO flowgate.workflows (id, workflow, status, queue, created_at, updated_at)
         VALUES ('queued', 'w', 'ENQUEUED', 'default', now() - interval '1 day', now() - interval '1 day')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let report = sweep(&app, retention(3600.0)).await;
    assert_all(&app, "old", false).await;
    assert_all(&app, "old-err", false).await;
    assert_all(&app, "recent", true).await;
    assert_all(&app, "pending", true).await;
    assert_eq!(rows(&app, "workflows", "id", "queued").await, 1);
    // Two runs and their two children; three records each.
    assert_eq!(report.get("workflows"), 4);
    assert_eq!(report.get("stream_records"), 6);
    assert_eq!(report.get("streams"), 2);
    assert_eq!(report.get("approval_uses"), 2);
    let r = app
        .http
        .get(app.url("/v1/workflows/old"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Nothing more goes on a second sweep.
    let again = sweep(&app, retention(3600.0)).await;
    assert_eq!(again.get("workflows"), 0);
}

#[tokio::test]
async fn a_finished_child_of_a_live_parent_stays_until_the_parent_finishes() {
    let app = spawn_app().await;
    populated_run(&app, "parent", None).await;
    age(&app, "parent", 7200).await;
    sweep(&app, retention(3600.0)).await;
    assert_eq!(rows(&app, "workflows", "id", "parent-child").await, 1);
    finish(&app, "parent", json!({"status": "SUCCESS"}), 200).await;
    sweep(&app, retention(3600.0)).await;
    assert_eq!(rows(&app, "workflows", "id", "parent-child").await, 0);
    assert_eq!(rows(&app, "workflows", "id", "parent").await, 1);
}

#[tokio::test]
async fn per_run_retention_overrides_the_default() {
    let app = crate::runtime_support::spawn_runtime_app(|_| {}).await;
    let start = |id: &str, retention: Value| {
        let body = json!({"workflow": "noop", "id": id, "retention_secs": retention});
        app.http
            .post(app.url("/v1/workflows?wait=20"))
            .json(&body)
            .send()
    };
    for (id, secs) in [
        ("short", json!(1)),
        ("forever", json!(0)),
        ("default", Value::Null),
    ] {
        let r = start(id, secs).await.unwrap();
        assert_eq!(r.status(), 200, "{id}");
    }
    for bad in [json!(-1), json!(1.5), json!("7d"), json!(400_000_000)] {
        let r = start("bad", bad).await.unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], "retention_secs");
    }
    // PUT takes it too.
    let r = app
        .http
        .put(app.url("/v1/workflows/ext"))
        .json(&json!({"workflow": "external", "retention_secs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    finish(&app, "ext", json!({"status": "SUCCESS"}), 200).await;
    age(&app, "forever", 86400 * 365).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let report = sweep(&app, retention(3600.0)).await;
    assert_eq!(report.get("workflows"), 2, "{report:?}");
    assert_eq!(rows(&app, "workflows", "id", "short").await, 0);
    assert_eq!(rows(&app, "workflows", "id", "ext").await, 0);
    assert_eq!(rows(&app, "workflows", "id", "forever").await, 1);
    assert_eq!(rows(&app, "workflows", "id", "default").await, 1);
    // With the default set to forever, only the runs' own retention counts.
    age(&app, "default", 86400 * 365).await;
    sweep(&app, retention(0.0)).await;
    assert_eq!(rows(&app, "workflows", "id", "default").await, 1);
}

#[tokio::test]
async fn idle_external_runs_are_ended_then_expire() {
    let app = spawn_app().await;
    populated_run(&app, "idle", None).await;
    populated_run(&app, "busy", None).await;
    for table in ["stream_records", "streams", "messages"] {
        sqlx::query(&format!(
            "UPDATE flowgate.{table} SET created_at = now() - interval '2 hours'
             WHERE workflow_id = 'idle'"
        ))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE flowgate.events SET updated_at = now() - interval '2 hours' WHERE workflow_id = 'idle'")
        .execute(&app.pool)
        .await
        .unwrap();
    age(&app, "idle", 7200).await;
    // `busy` has an old run row but was written to just now.
    age(&app, "busy", 7200).await;
    let cfg = RetentionConfig {
        idle: Duration::from_secs(3600),
        ..retention(86400.0)
    };
    let report = sweep(&app, cfg.clone()).await;
    assert_eq!(report.idle_ended, 1);
    let run: Value = app
        .http
        .get(app.url("/v1/workflows/idle"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "CANCELLED");
    assert_eq!(run["error"]["code"], "idle");
    let busy: Value = app
        .http
        .get(app.url("/v1/workflows/busy"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(busy["status"], "PENDING");
    // Ended at its last write (two hours ago): gone once that is past the retention.
    let report = sweep(
        &app,
        RetentionConfig {
            retention: Duration::from_secs(3600),
            ..cfg
        },
    )
    .await;
    assert_eq!(report.idle_ended, 0);
    assert_eq!(rows(&app, "workflows", "id", "idle").await, 0);
    assert_eq!(rows(&app, "workflows", "id", "busy").await, 1);
}

#[tokio::test]
async fn consumed_messages_leave_a_live_run_and_its_idempotency_keys_stay_valid() {
    let app = crate::runtime_support::spawn_runtime_app(|_| {}).await;
    let r = app
        .http
        .post(app.url("/v1/workflows"))
        .json(&json!({"workflow": "pingpong", "id": "pp", "input": {"n": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let send = |key: &str| {
        let body = json!({"topic": "ping", "body": {"t": 1}, "idempotency_key": key});
        app.http
            .post(app.url("/v1/workflows/pp/messages"))
            .json(&body)
            .send()
    };
    let first: Value = send("k1").await.unwrap().json().await.unwrap();
    // Wait (bounded) until the workflow consumed it.
    let mut consumed = false;
    for _ in 0..200 {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM flowgate.messages WHERE consumed_at IS NOT NULL",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if n == 1 {
            consumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(consumed);
    sqlx::query("UPDATE flowgate.messages SET consumed_at = now() - interval '2 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let report = sweep(&app, retention(3600.0)).await;
    assert_eq!(report.get("messages"), 1);
    assert_eq!(report.message_keys_kept, 1);
    assert_eq!(rows(&app, "messages", "workflow_id", "pp").await, 0);
    assert_eq!(rows(&app, "workflows", "id", "pp").await, 1);
    // The key still answers as a duplicate with the first id, and delivers nothing.
    let again = send("k1").await.unwrap();
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message_id"], first["message_id"]);
    let other = app
        .http
        .post(app.url("/v1/workflows/pp/messages"))
        .json(&json!({"topic": "ping", "body": {"t": 2}, "idempotency_key": "k1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 409);
    assert_eq!(rows(&app, "messages", "workflow_id", "pp").await, 0);
    // The second ping finishes the run with exactly two receipts.
    send("k2").await.unwrap();
    let done: Value = app
        .http
        .get(app.url("/v1/workflows/pp?wait=20"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "SUCCESS");
    assert_eq!(done["output"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn children_inherit_their_parents_retention_and_dead_executors_are_pruned() {
    let app = crate::runtime_support::spawn_runtime_app(|_| {}).await;
    let body =
        json!({"workflow": "fanout", "input": {"children": 2, "fib": 1}, "retention_secs": 77});
    let r = app
        .http
        .post(app.url("/v1/workflows?wait=60"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let kept: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT retention_secs FROM flowgate.workflows WHERE parent_id IS NOT NULL",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(kept, vec![Some(77), Some(77)]);
    sqlx::query(
        "INSERT INTO flowgate.executors (id, heartbeat_at) VALUES ('gone', now() - interval '2 hours')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let report = sweep(&app, retention(3600.0)).await;
    assert_eq!(report.get("executors"), 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM flowgate.executors")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "this process's own executor stays");
}
