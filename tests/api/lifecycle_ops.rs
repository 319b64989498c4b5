//! Retention in operation: SSE readers of an expiring run, the finish API, concurrent
//! sweepers, `flowgate gc` and the metrics.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::lifecycle::{age, finish, populated_run, retention, rows};
use flowgate::lifecycle::{LockMode, RetentionConfig, Sweeper};

async fn metrics_text(app: &TestApp) -> String {
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

/// `flowgate_gc_rows_deleted_total{table="stream_records"}` (0 before any sweep).
fn deleted_records(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("flowgate_gc_rows_deleted_total{table=\"stream_records\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn background(secs: f64) -> RetentionConfig {
    RetentionConfig {
        gc_interval: Duration::from_millis(150),
        ..retention(secs)
    }
}

#[tokio::test]
async fn an_sse_reader_of_an_expiring_run_ends_cleanly_and_a_resume_is_410() {
    let app = spawn_app_with(|c| c.retention = background(1.0)).await;
    app.create_run("r").await;
    app.append("r", "out", &[json!(1), json!(2)]).await;
    let mut sse = app.sse("/v1/workflows/r/streams/out", None).await;
    let mut live = app.sse("/v1/workflows/r/live", None).await;
    let evs = collect_events(&mut sse, 2, Duration::from_secs(10)).await;
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1].id, "1");
    finish(&app, "r", json!({"status": "SUCCESS"}), 200).await;
    let end = collect_events(&mut sse, 1, Duration::from_secs(20)).await;
    assert_eq!(end.len(), 1, "no end event");
    assert_eq!(end[0].event, "end");
    let data: Value = serde_json::from_str(&end[0].data).unwrap();
    assert_eq!(data, json!({"next": 2, "expired": true}));
    // The response then ends (no 5xx, no hang).
    let after = tokio::time::timeout(Duration::from_secs(5), sse.next()).await;
    assert!(matches!(after, Ok(None)), "response did not end");
    // The page's connection ends the same way.
    let mut saw_end = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, live.next()).await {
        if ev.event == "end" {
            assert_eq!(ev.data, r#"{"expired":true}"#);
            saw_end = true;
        }
    }
    assert!(saw_end, "live response did not end with `end`");
    // A reconnect that resumes answers 410.
    let r = app
        .http
        .get(app.url("/v1/workflows/r/streams/out"))
        .header("accept", "text/event-stream")
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "run_gone");
    // The sweep counts its deletes when it ends, just after readers heard of them.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = metrics_text(&app).await;
        if deleted_records(&metrics) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deleted_records(&metrics), 2);
    assert!(metrics.contains("flowgate_gc_sweep_seconds_count"));
    assert!(metrics.contains("flowgate_table_bytes{table=\"stream_records\"}"));
    assert!(metrics.contains("flowgate_table_rows_estimate{table=\"workflows\"}"));
}

#[tokio::test]
async fn finish_marks_an_external_run_and_wakes_waiters() {
    let app = spawn_app().await;
    app.create_run("ext").await;
    let waiter = {
        let (http, url) = (app.http.clone(), app.url("/v1/workflows/ext?wait=20"));
        tokio::spawn(async move { http.get(url).send().await.unwrap().json::<Value>().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = json!({"status": "ERROR", "error": {"message": "boom"}});
    let v = finish(&app, "ext", body.clone(), 200).await;
    assert_eq!(v, json!({"id": "ext", "status": "ERROR"}));
    let seen = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter woke")
        .unwrap()
        .unwrap();
    assert_eq!(seen["status"], "ERROR");
    assert_eq!(seen["error"]["message"], "boom");
    // Again with the same status: a no-op; with another: 409.
    finish(&app, "ext", body, 200).await;
    let v = finish(&app, "ext", json!({"status": "SUCCESS"}), 409).await;
    assert_eq!(v["error"]["code"], "not_finishable");
    let v = finish(&app, "ext", json!({"status": "DONE"}), 400).await;
    assert_eq!(v["error"]["field"], "status");
    finish(&app, "nope", json!({"status": "SUCCESS"}), 404).await;
    // A run of the workflow runtime finishes itself.
    sqlx::query(
        "INSERT INTO flowgate.workflows (id, workflow, status) VALUES ('rt', 'w', 'PENDING')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    finish(&app, "rt", json!({"status": "SUCCESS"}), 409).await;
    // Other languages finish with SQL.
    app.create_run("sql").await;
    let s: String =
        sqlx::query_scalar("SELECT flowgate.finish_run('sql', 'SUCCESS', '{\"n\": 1}')")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(s, "SUCCESS");
    let run: Value = app
        .http
        .get(app.url("/v1/workflows/sql"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (run["status"].clone(), run["output"].clone()),
        (json!("SUCCESS"), json!({"n": 1}))
    );
}

#[tokio::test]
async fn finish_needs_an_api_key_like_put() {
    let app = spawn_app_with(|c| c.api_keys = vec!["producer-key".into()]).await;
    let created: Value = app
        .http
        .put(app.url("/v1/workflows/k"))
        .bearer_auth("producer-key")
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let url = app.url("/v1/workflows/k/finish");
    let body = json!({"status": "SUCCESS"});
    let r = app.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .http
        .post(&url)
        .bearer_auth("producer-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `runs` expired runs with `records` records each, committed at once (a background
/// sweeper must not see a run without its records).
async fn expired_runs_with_records(app: &TestApp, runs: i32, records: i32) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO flowgate.workflows (id, workflow, status, external, updated_at)
         SELECT 'r' || i, 'w', 'SUCCESS', true, now() - interval '2 hours' FROM generate_series(1, $1) i;
         ",
    )
    .bind(runs)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO flowgate.streams (workflow_id, key, next_offset)
         SELECT 'r' || i, 'out', $2 FROM generate_series(1, $1) i",
    )
    .bind(runs)
    .bind(records as i64)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO flowgate.stream_records (workflow_id, key, \"offset\", payload)
         SELECT 'r' || i, 'out', o, '\\x31' FROM generate_series(1, $1) i, generate_series(0, $2 - 1) o",
    )
    .bind(runs)
    .bind(records as i64)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn two_sweeps_at_once_delete_each_row_once() {
    let app = spawn_app().await;
    expired_runs_with_records(&app, 40, 100).await;
    let cfg = RetentionConfig {
        gc_batch: 150,
        ..retention(3600.0)
    };
    let a = Sweeper::new(app.pool.clone(), cfg.clone(), None);
    let b = Sweeper::new(app.pool.clone(), cfg, None);
    let stop = CancellationToken::new();
    let (ra, rb) = tokio::join!(
        a.run_once(LockMode::Wait, &stop),
        b.run_once(LockMode::Wait, &stop)
    );
    let (ra, rb) = (ra.expect("first sweep"), rb.expect("second sweep"));
    assert_eq!(ra.get("workflows") + rb.get("workflows"), 40);
    assert_eq!(ra.get("stream_records") + rb.get("stream_records"), 4000);
    assert_eq!(ra.get("streams") + rb.get("streams"), 40);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM flowgate.stream_records")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn two_processes_sweeping_one_database_share_the_work() {
    let db = fresh_database().await;
    let one = spawn_on(&db, |c| c.retention = background(3600.0)).await;
    let two = spawn_on(&db, |c| c.retention = background(3600.0)).await;
    expired_runs_with_records(&one, 30, 50).await;
    let mut left = -1;
    for _ in 0..200 {
        left = rows(&one, "workflows", "status", "SUCCESS").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0);
    let mut total = 0;
    for _ in 0..100 {
        total =
            deleted_records(&metrics_text(&one).await) + deleted_records(&metrics_text(&two).await);
        if total >= 1500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        total, 1500,
        "each record deleted exactly once across both processes"
    );
}

async fn gc_cli(db: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .arg("gc")
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run flowgate gc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `rows` column of `table` in the dry-run table (names fill the first 34 columns).
fn plan_rows(text: &str, table: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let (name, rest) = (l.get(..34)?, l.get(34..)?);
        (name.trim() == table)
            .then(|| rest.split_whitespace().next()?.parse().ok())
            .flatten()
    })
}

#[tokio::test]
async fn gc_dry_run_prints_what_would_go_and_gc_removes_it() {
    let app = spawn_app().await;
    populated_run(&app, "old", Some("SUCCESS")).await;
    populated_run(&app, "new", Some("SUCCESS")).await;
    age(&app, "old", 7200).await;
    let text = gc_cli(&app.db_url, &["--dry-run", "--retention", "1h"]).await;
    assert!(text.contains("nothing is deleted"), "{text}");
    assert_eq!(plan_rows(&text, "workflows"), Some(2), "{text}");
    assert_eq!(plan_rows(&text, "stream_records"), Some(3), "{text}");
    assert_eq!(plan_rows(&text, "steps"), Some(1), "{text}");
    let json: Value = serde_json::from_str(
        &gc_cli(&app.db_url, &["--dry-run", "--json", "--retention", "3600"]).await,
    )
    .unwrap();
    let records = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["table"] == "stream_records")
        .unwrap()
        .clone();
    assert_eq!(records["rows"], 3);
    assert!(records["bytes"].as_i64().unwrap() > 0);
    assert_eq!(
        rows(&app, "workflows", "id", "old").await,
        1,
        "dry run deleted"
    );
    let text = gc_cli(&app.db_url, &["--retention", "1h"]).await;
    assert!(text.contains("stream_records"), "{text}");
    assert_eq!(rows(&app, "workflows", "id", "old").await, 0);
    assert_eq!(rows(&app, "workflows", "id", "new").await, 1);
}

#[tokio::test]
async fn a_sweep_stops_between_transactions_at_shutdown_and_the_next_one_finishes() {
    let app = spawn_app().await;
    expired_runs_with_records(&app, 20, 1000).await;
    let cfg = RetentionConfig {
        gc_batch: 200,
        gc_pause: Duration::from_millis(50),
        ..retention(3600.0)
    };
    let sweeper = Sweeper::new(app.pool.clone(), cfg, None);
    let stop = CancellationToken::new();
    let run = {
        let (s, stop) = (sweeper.clone(), stop.clone());
        tokio::spawn(async move { s.run_once(LockMode::Wait, &stop).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    stop.cancel();
    let first = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the sweep stops promptly")
        .unwrap()
        .unwrap();
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert!(first.get("stream_records") < 20_000, "{first:?}");
    let second = sweeper
        .run_once(LockMode::Wait, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        first.get("stream_records") + second.get("stream_records"),
        20_000
    );
    assert_eq!(first.get("workflows") + second.get("workflows"), 20);
}
