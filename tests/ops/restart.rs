//! A Postgres restart under a streaming gateway, and the private cluster started when
//! nothing is configured. Both run a private cluster of their own, never touching the
//! shared server.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{json, Value};

use flowgate::private_pg::PrivateCluster;

use crate::procs::*;

/// A scratch directory the cluster's unprivileged user can traverse.
pub(crate) fn scratch() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("flowgate-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

async fn readyz(base: &str) -> u16 {
    match reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Postgres stops and starts again while a subscriber follows a stream: readiness reports
/// the outage and recovers, and the subscriber gets every record exactly once.
#[tokio::test]
async fn postgres_restart_during_streaming() {
    let dir = scratch();
    let data = dir.path().join("pg");
    let cluster = PrivateCluster::start(&data).await.unwrap();
    let url = cluster.url.clone();
    let p = Proc::start(&[("DATABASE_URL", &url)]).await;
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{}/v1/workflows/r", p.base))
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let mut sse = open_sse(&format!("{}/v1/workflows/r/streams/s", p.base), None).await;
    let append = |i: i64| {
        let http = http.clone();
        let url = format!("{}/v1/workflows/r/streams/s", p.base);
        async move {
            http.post(url)
                .json(&[json!(i)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..50 {
        assert_eq!(append(i).await, 200);
    }
    cluster.stop().await;
    let mut outage = 0;
    for _ in 0..40 {
        outage = readyz(&p.base).await;
        if outage == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outage, 503, "readiness reports the outage");
    let cluster = PrivateCluster::start(&data).await.unwrap();
    let mut back = 0;
    for _ in 0..100 {
        back = readyz(&p.base).await;
        if back == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, 200, "readiness recovers");
    for i in 50..100 {
        // The pool may hand out a dead connection once; retry a failed append.
        let mut s = append(i).await;
        for _ in 0..5 {
            if s == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            s = append(i).await;
        }
        assert_eq!(s, 200);
    }
    http.post(format!("{}/v1/workflows/r/streams/s/close", p.base))
        .send()
        .await
        .unwrap();
    let (ids, ended) = read_until_end(&mut sse, Duration::from_secs(30)).await;
    assert!(ended);
    assert_eq!(ids, (0..100).collect::<Vec<_>>());
    drop(p);
    cluster.stop().await;
}

/// With DATABASE_URL unset and nothing at the default address, `serve` runs its own
/// cluster: it serves a stream end to end, keeps the data across a restart, and leaves no
/// Postgres process behind after SIGTERM.
#[tokio::test]
async fn private_cluster_when_nothing_is_configured() {
    let dir = scratch();
    let data = dir.path().join("pg");
    let data_s = data.to_str().unwrap().to_string();
    let env = [
        (
            "FLOWGATE_DEFAULT_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/postgres",
        ),
        ("FLOWGATE_DATA_DIR", data_s.as_str()),
    ];
    let mut p = Proc::start(&env).await;
    let http = reqwest::Client::new();
    http.put(format!("{}/v1/workflows/r", p.base))
        .json(&json!({"workflow": "external"}))
        .send()
        .await
        .unwrap();
    let r = http
        .post(format!("{}/v1/workflows/r/streams/s", p.base))
        .json(&[json!("kept")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(30)).await.0, Some(0));
    assert!(!postgres_running(&data_s), "no Postgres left behind");

    let mut p = Proc::start(&env).await;
    let polled: Value = http
        .get(format!(
            "{}/v1/workflows/r/streams/s/poll?from=0&timeout=1",
            p.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        polled["records"][0]["value"],
        json!("kept"),
        "data kept across restarts"
    );
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(30)).await.0, Some(0));
    assert!(!postgres_running(&data_s));
}

fn postgres_running(data_dir: &str) -> bool {
    let mut found = false;
    for _ in 0..50 {
        found = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(data_dir))
                .unwrap_or(false)
        });
        if !found {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    found
}
