//! Queues: two worker processes on one database share the work, never exceed the global
//! or the per-process concurrency limit, and run every enqueued workflow exactly once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::helpers::fresh_database;
use crate::runtime_support::*;

#[tokio::test]
async fn two_workers_share_a_queue_within_its_limits() {
    let db = fresh_database().await;
    let http = reqwest::Client::new();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let flags = ["--queue", "default:8,probe:2:3"];
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
    let owner: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT id, executor_id FROM flowgate.workflows WHERE queue = 'probe'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    // The load log, in commit order: never more than 3 probes inside their step at once,
    // never more than 2 in one process, and each probe entered exactly once.
    let log = records(&pool, "tracker", "load").await;
    let (mut inside, mut peak) = (0i64, 0i64);
    let mut per_process: HashMap<String, (i64, i64)> = HashMap::new();
    let mut entries: HashMap<String, i64> = HashMap::new();
    for (_, v) in &log {
        let d = v["d"].as_i64().unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        inside += d;
        peak = peak.max(inside);
        let p = per_process.entry(owner[&id].clone()).or_default();
        p.0 += d;
        p.1 = p.1.max(p.0);
        if d == 1 {
            *entries.entry(id).or_default() += 1;
        }
    }
    assert_eq!(inside, 0);
    assert!(peak <= 3, "peak concurrency {peak}");
    assert!(per_process.values().all(|p| p.1 <= 2), "{per_process:?}");
    assert_eq!(entries.len(), n);
    assert!(entries.values().all(|&c| c == 1), "{entries:?}");
    eprintln!("peak {peak}; per executor (now, peak): {per_process:?}");
    let attempts: i64 =
        sqlx::query_scalar("SELECT sum(attempts) FROM flowgate.workflows WHERE queue = 'probe'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, n as i64);
}
