//! Recovery: a real `flowgate` process killed with SIGKILL mid-workflow, another one
//! finishing the run; max attempts; external runs left alone.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::fresh_database;
use crate::runtime_support::*;

#[tokio::test]
async fn killed_worker_is_taken_over_and_nothing_recorded_runs_twice() {
    let db = fresh_database().await;
    let mut a = Worker::spawn(&db, "exec-a", &[]).await;
    let http = reqwest::Client::new();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let input = json!({"steps": 20, "delay_ms": 150, "recv_at": [3, 12]});
    let (status, _, _) = start(
        &http,
        &a.base,
        json!({"workflow": "crashy", "id": "crash-1", "input": input}),
        "",
    )
    .await;
    assert_eq!(status, 201);
    // Both messages wait in the table before the workflow asks for them.
    for n in [1, 2] {
        let r = http
            .post(format!("{}/v1/workflows/crash-1/messages", a.base))
            .json(&json!({"topic": "m", "body": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let count_output = "SELECT count(*) FROM flowgate.stream_records \
                        WHERE workflow_id = 'crash-1' AND key = 'output'";
    wait_count(&pool, count_output, 6, Duration::from_secs(30)).await;
    a.kill();
    let recorded: HashSet<i64> = sqlx::query_scalar::<_, Value>(
        "SELECT output FROM flowgate.steps WHERE workflow_id = 'crash-1' AND name = 'work'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .filter_map(|v| v.as_i64())
    .collect();
    assert!(recorded.len() >= 6 && recorded.len() < 20, "{recorded:?}");

    let b = Worker::spawn(&db, "exec-b", &[]).await;
    let row = finished(&http, &b.base, "crash-1", Duration::from_secs(60)).await;
    assert_eq!(row["status"], "SUCCESS", "{row}");
    assert_eq!(row["output"]["got"], json!([{"n": 1}, {"n": 2}]));

    // Stream offsets contiguous, one record per step, no duplicates.
    let out = records(&pool, "crash-1", "output").await;
    let expected: Vec<(i64, Value)> = (0..20).map(|i| (i, json!(i))).collect();
    assert_eq!(out, expected);

    // Side effects: once for every step recorded before the kill; at most one step (the
    // one in flight when the process died) ran twice.
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for (_, v) in records(&pool, "crash-1", "effects").await {
        *counts.entry(v.as_i64().unwrap()).or_default() += 1;
    }
    for i in 0..20 {
        let c = counts.get(&i).copied().unwrap_or(0);
        if recorded.contains(&i) {
            assert_eq!(c, 1, "recorded step {i} ran {c} times");
        } else {
            assert!((1..=2).contains(&c), "step {i} ran {c} times");
        }
    }
    let repeats: usize = counts.values().map(|c| c - 1).sum();
    assert!(repeats <= 1, "{counts:?}");

    // Each message consumed exactly once.
    let consumed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM flowgate.messages WHERE workflow_id = 'crash-1' AND consumed_at IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(consumed, 2);
    let (attempts, owner): (i32, String) =
        sqlx::query_as("SELECT attempts, executor_id FROM flowgate.workflows WHERE id = 'crash-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((attempts, owner.as_str()), (2, "exec-b"));
}

#[tokio::test]
async fn restarted_executor_resumes_its_own_runs() {
    let db = fresh_database().await;
    let http = reqwest::Client::new();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let mut a = Worker::spawn(&db, "exec-same", &["--executor-dead-after", "600"]).await;
    let input = json!({"steps": 8, "delay_ms": 100, "recv_at": []});
    let body = json!({"workflow": "crashy", "id": "own-1", "input": input});
    assert_eq!(start(&http, &a.base, body, "").await.0, 201);
    let q = "SELECT count(*) FROM flowgate.steps WHERE workflow_id = 'own-1' AND name = 'work'";
    wait_count(&pool, q, 2, Duration::from_secs(30)).await;
    a.kill();
    // Nobody else would take it over for ten minutes: the same executor id resumes it.
    let b = Worker::spawn(&db, "exec-same", &["--executor-dead-after", "600"]).await;
    let row = finished(&http, &b.base, "own-1", Duration::from_secs(60)).await;
    assert_eq!(row["status"], "SUCCESS", "{row}");
    let out = records(&pool, "own-1", "output").await;
    assert_eq!(out.len(), 8);
}

#[tokio::test]
async fn run_that_keeps_crashing_is_marked_error_and_external_runs_are_left_alone() {
    let app = spawn_runtime_app(|c| {
        c.runtime.executor_heartbeat = 0.1;
        c.runtime.executor_dead_after = 0.3;
        c.runtime.max_attempts = 3;
    })
    .await;
    // An externally-run workflow under a registered name, and a run owned by an executor
    // that never heart-beats, already started three times.
    app.create_run("ext-1").await;
    sqlx::query("UPDATE flowgate.workflows SET workflow = 'progress' WHERE id = 'ext-1'")
        .execute(&app.pool)
        .await
        .unwrap();

    sqlx::query(
        "INSERT INTO flowgate.workflows (id, workflow, status, input, executor_id, attempts)
         VALUES ('doomed', 'progress', 'PENDING', '{}', 'ghost', 3)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let row = finished(&app.http, &app.base, "doomed", Duration::from_secs(20)).await;
    assert_eq!(row["status"], "ERROR");
    assert!(row["error"]["message"]
        .as_str()
        .unwrap()
        .contains("attempts"));
    // The external run was seen by the same takeover scans and never claimed.
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM flowgate.workflows WHERE id = 'ext-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("PENDING", 0));
    // … and its producers can still write to it.
    assert_eq!(app.append("ext-1", "log", &[json!("still open")]).await, 0);
}

#[tokio::test]
async fn graceful_shutdown_leaves_runs_pending_for_the_next_process() {
    let mut app = spawn_runtime_app(|c| c.runtime.executor_id = Some("exec-x".into())).await;
    let body = json!({"workflow": "crashy", "id": "s1", "input": {"steps": 10, "delay_ms": 100, "recv_at": []}});
    assert_eq!(start(&app.http, &app.base, body, "").await.0, 201);
    let q = "SELECT count(*) FROM flowgate.steps WHERE workflow_id = 's1' AND name = 'work'";
    wait_count(&app.pool, q, 2, Duration::from_secs(20)).await;
    app.stop().await;
    let status: String =
        sqlx::query_scalar("SELECT status FROM flowgate.workflows WHERE id = 's1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "PENDING");
    let next = spawn_runtime_on(&app.db_url, |c| {
        c.runtime.executor_id = Some("exec-x".into())
    })
    .await;
    let row = finished(&next.http, &next.base, "s1", Duration::from_secs(30)).await;
    assert_eq!(row["status"], "SUCCESS", "{row}");
    assert_eq!(records(&next.pool, "s1", "output").await.len(), 10);
    // The step running at shutdown finished and was recorded, so no step ran twice.
    let effects = records(&next.pool, "s1", "effects").await;
    let values: Vec<Value> = effects.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, (0..10).map(|i| json!(i)).collect::<Vec<_>>());
}
