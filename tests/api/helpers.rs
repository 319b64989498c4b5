//! Test harness: every test gets its own fresh database and a server on a random port.
//! Logs are printed only when `TEST_LOG` is set.

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use sqlx::PgPool;

use flowgate::{Config, RunningApp};

/// Admin URL of the machine's Postgres (override with `TEST_DATABASE_URL`).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let pool = PgPool::connect(&admin)
        .await
        .expect("connect admin database");
    let name = format!("fg_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin);
    format!("{base}/{name}")
}

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        flowgate::telemetry::init();
    }
}

/// A running server on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The database URL.
    pub db_url: String,
    /// A pool on that database for direct checks.
    pub pool: PgPool,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The server.
    pub app: Option<RunningApp>,
}

/// Starts a server on a fresh database with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server on a fresh database after `tweak` adjusts the settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db_url = fresh_database().await;
    spawn_on(&db_url, tweak).await
}

/// Starts a server on an existing database.
pub async fn spawn_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let mut config = Config::new(db_url, "127.0.0.1:0".parse().unwrap());
    tweak(&mut config);
    let app = flowgate::start(config).await.expect("start flowgate");
    let base = format!("http://{}", app.addr);
    wait_ready(&base).await;
    let pool = PgPool::connect(db_url)
        .await
        .expect("connect test database");
    TestApp {
        base,
        db_url: db_url.to_string(),
        pool,
        http: reqwest::Client::new(),
        app: Some(app),
    }
}

/// Waits (bounded) until `/readyz` says ready.
pub async fn wait_ready(base: &str) {
    wait_ready_long(base, Duration::from_secs(5)).await
}

/// Waits until `/readyz` says ready, for at most `within`.
pub async fn wait_ready_long(base: &str, within: Duration) {
    let http = reqwest::Client::new();
    for _ in 0..(within.as_millis() / 50) {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} never became ready");
}

impl TestApp {
    /// `base + path`
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path`, its body parsed as JSON (whatever the status).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        r.json().await.unwrap()
    }

    /// Creates an externally-run workflow record.
    pub async fn create_run(&self, id: &str) {
        let r = self
            .http
            .put(self.url(&format!("/v1/workflows/{id}")))
            .json(&serde_json::json!({"workflow": "external"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create run: {}", r.status());
    }

    /// Appends JSON records over HTTP; returns the first offset.
    pub async fn append(&self, run: &str, key: &str, values: &[serde_json::Value]) -> i64 {
        let r = self
            .http
            .post(self.url(&format!("/v1/workflows/{run}/streams/{key}")))
            .json(values)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "append: {}",
            r.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = r.json().await.unwrap();
        body["first_offset"].as_i64().unwrap()
    }

    /// Opens an SSE connection read by an independent parser (`eventsource-stream`).
    pub async fn sse(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> impl Stream<Item = Event> + Unpin + use<> {
        let mut req = self
            .http
            .get(self.url(path))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "sse {path}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Box::pin(
            resp.bytes_stream()
                .eventsource()
                .map(|e| e.expect("valid SSE")),
        )
    }

    /// Stops the server.
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }
}

/// Reads events until `n` data events arrived or `event: end`, with an overall deadline.
pub async fn collect_events(
    stream: &mut (impl Stream<Item = Event> + Unpin),
    n: usize,
    within: Duration,
) -> Vec<Event> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(ev)) => {
                let end = ev.event == "end";
                out.push(ev);
                if end {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}
