//! Harness for runtime tests: an in-process server with the demo (and hidden test)
//! workflows, and real `flowgate` child processes that a test can SIGKILL.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{fresh_database, wait_ready, TestApp};
use flowgate::Config;

/// Starts an in-process server on a fresh database with the demo and test workflows.
pub async fn spawn_runtime_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_runtime_on(&fresh_database().await, tweak).await
}

/// Starts an in-process server with the demo and test workflows on an existing database.
pub async fn spawn_runtime_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db_url = db_url.to_string();
    if std::env::var("TEST_LOG").is_ok() {
        flowgate::telemetry::init();
    }
    let mut config = Config::new(&db_url, "127.0.0.1:0".parse().unwrap());
    tweak(&mut config);
    let workflows = flowgate::demo::builder(true);
    let app = flowgate::app::start_with(config, Some(workflows))
        .await
        .expect("start flowgate");
    let base = format!("http://{}", app.addr);
    wait_ready(&base).await;
    let pool = sqlx::PgPool::connect(&db_url).await.expect("connect");
    TestApp {
        base,
        db_url,
        pool,
        http: reqwest::Client::new(),
        app: Some(app),
    }
}

/// A `flowgate serve` child process; killed with SIGKILL when dropped.
pub struct Worker {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Worker {
    /// Starts `flowgate serve` on `db_url` as executor `executor` with extra flags.
    pub async fn spawn(db_url: &str, executor: &str, extra: &[&str]) -> Worker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = if std::env::var("TEST_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let dead_after = if extra.contains(&"--executor-dead-after") {
            &[][..]
        } else {
            &["--executor-dead-after", "1"][..]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_flowgate"))
            .arg("serve")
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--executor-id", executor])
            .args(["--executor-heartbeat", "0.2"])
            .args(dead_after)
            .arg("--test-workflows")
            .args(extra)
            .env("DATABASE_URL", db_url)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn flowgate");
        let base = format!("http://127.0.0.1:{port}");
        let mut worker = Worker { child, base };
        worker.wait_ready().await;
        worker
    }

    /// Waits (bounded, generous: the machine may be busy) until `/readyz` says ready.
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("flowgate exited early with {status}");
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("flowgate at {} never became ready", self.base);
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a workflow over HTTP; returns the response status and body.
pub async fn start(
    http: &reqwest::Client,
    base: &str,
    body: Value,
    query: &str,
) -> (u16, Value, Option<String>) {
    let r = http
        .post(format!("{base}/v1/workflows{query}"))
        .json(&body)
        .send()
        .await
        .expect("start request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), location)
}

/// Waits (bounded by `within`) until run `id` finishes; returns its row.
pub async fn finished(http: &reqwest::Client, base: &str, id: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let r = http
            .get(format!("{base}/v1/workflows/{id}?wait=5"))
            .send()
            .await
            .expect("get run");
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if matches!(
            v["status"].as_str(),
            Some("SUCCESS" | "ERROR" | "CANCELLED")
        ) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} did not finish in {within:?}: {v}"
        );
    }
}

/// Polls the database (bounded) until `sql` (one i64) reaches `at_least`.
pub async fn wait_count(pool: &sqlx::PgPool, sql: &str, at_least: i64, within: Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("count");
        if n >= at_least {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql} stayed at {n} < {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The JSON records of a stream, in offset order: `(offset, value)`.
pub async fn records(pool: &sqlx::PgPool, run: &str, key: &str) -> Vec<(i64, Value)> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        r#"SELECT "offset", payload FROM flowgate.stream_records
           WHERE workflow_id = $1 AND key = $2 ORDER BY "offset""#,
    )
    .bind(run)
    .bind(key)
    .fetch_all(pool)
    .await
    .expect("records");
    rows.into_iter()
        .map(|(o, p)| (o, serde_json::from_slice(&p).expect("json record")))
        .collect()
}
