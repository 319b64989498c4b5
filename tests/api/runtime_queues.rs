//! Queues: two worker processes on one database share the work, never exceed the global
//! concurrency limit, and run every enqueued workflow exactly once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::helpers::fresh_database;
use crate::runtime_support::*;

#[tokio::test]
async fn two_workers_share_a_queue_within_its_global_limit() {
    let db = fresh_database().await;
    let http = reqwest::Client::new();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let flags = ["--queue", "default:8,probe:3:2"];
    let a = Worker::spawn(&db, "exec-a", &flags).await;
    let b = Worker::spawn(&db, "exec-b", &flags).await;
    let r = http
        .put(format!("{}/v1/workflows/tracker", a.base))
        .json(&json!({"workflow": "tracker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let n = 16;
    for i in 0..n {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let body = json!({
            "workflow": "probe", "id": format!("p{i}"), "queue": "probe",
            "input": {"tracker": "tracker", "hold_ms": 100},
        });
        let (status, v, _) = start(&http, base, body, "").await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["status"], "ENQUEUED");
    }
    for i in 0..n {
        let row = finished(&http, &a.base, &format!("p{i}"), Duration::from_secs(60)).await;
        assert_eq!(row["status"], "SUCCESS", "{row}");
    }
    // The load log, in commit order: never more than 2 probes inside their step at once,
    // and each probe entered exactly once.
    let log = records(&pool, "tracker", "load").await;
    let (mut inside, mut peak) = (0i64, 0i64);
    let mut entries: HashMap<String, i64> = HashMap::new();
    for (_, v) in &log {
        let d = v["d"].as_i64().unwrap();
        inside += d;
        peak = peak.max(inside);
        if d == 1 {
            *entries
                .entry(v["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(inside, 0);
    assert!(peak <= 2, "peak concurrency {peak}");
    assert_eq!(entries.len(), n);
    assert!(entries.values().all(|&c| c == 1), "{entries:?}");
    let per_executor: Vec<(String, i64)> = sqlx::query_as(
        "SELECT executor_id, count(*) FROM flowgate.workflows WHERE queue = 'probe'
         GROUP BY executor_id ORDER BY executor_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    eprintln!("probe runs per executor: {per_executor:?}");
    let attempts: i64 =
        sqlx::query_scalar("SELECT sum(attempts) FROM flowgate.workflows WHERE queue = 'probe'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, n as i64);
}
