//! Runtime benchmark against the local Postgres (release build: `cargo bench --bench runtime`):
//! send → recv latency, set_event → waiting long-poll latency, and workflows/s through a
//! queue. Prints p50/p99; asserts nothing.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowgate::runtime::{Runtime, StartRequest, WorkflowContext, WorkflowResult};
use flowgate::Config;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[derive(Deserialize, JsonSchema)]
struct PingPong {
    n: u32,
}

/// Receives `n` pings; answers each with a `pong` event stamped with the time it was set.
async fn pingpong(ctx: WorkflowContext, input: PingPong) -> WorkflowResult<Vec<i64>> {
    let mut lat = Vec::new();
    for i in 0..input.n {
        let m: Option<Value> = ctx.recv("ping", Duration::from_secs(30)).await?;
        let sent = m.and_then(|v| v["t"].as_i64()).unwrap_or(0);
        lat.push(now_us() - sent);
        ctx.set_event("pong", json!({"i": i, "t": now_us()}))
            .await?;
    }
    Ok(lat)
}

#[derive(Deserialize, JsonSchema)]
struct Noop {}

async fn noop(ctx: WorkflowContext, _: Noop) -> WorkflowResult<u32> {
    ctx.step("one", || async { Ok::<_, String>(1u32) }).await
}

fn pct(v: &mut [i64], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin_pool = sqlx::PgPool::connect(&admin).await?;
    let name = format!("fg_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await?;
    let db = format!(
        "{}/{name}",
        admin.rsplit_once('/').map(|x| x.0).unwrap_or(&admin)
    );

    let builder = Runtime::builder()
        .workflow("pingpong", pingpong)
        .workflow("noop", noop)
        .queue("bench", 16);
    let mut config = Config::new(&db, "127.0.0.1:0".parse()?);
    config.runtime.queues = vec!["default:8".into(), "bench:16".into()];
    let app = flowgate::app::start_with(config, Some(builder)).await?;
    let base = format!("http://{}", app.addr);
    let http = reqwest::Client::new();
    let rt = app.state.runtime.clone().expect("runtime");

    // send → recv and set_event → long-poll, 300 round trips over HTTP.
    let n = 300;
    let started = rt
        .start(StartRequest {
            workflow: "pingpong".into(),
            input: json!({"n": n}),
            id: None,
            queue: None,
        })
        .await?;
    let id = started.id;
    let mut poll_lat = Vec::new();
    let mut after = 0;
    for _ in 0..n {
        let poll = http
            .get(format!("{base}/v1/workflows/{id}/events/pong"))
            .query(&[("after", after.to_string()), ("timeout", "10".into())])
            .send();
        let send = http
            .post(format!("{base}/v1/workflows/{id}/messages"))
            .json(&json!({"topic": "ping", "body": {"t": now_us()}}))
            .send();
        let (polled, sent) = tokio::join!(poll, send);
        sent?;
        let v: Value = polled?.json().await?;
        poll_lat.push(now_us() - v["value"]["t"].as_i64().unwrap_or(0));
        after = v["version"].as_i64().unwrap_or(after);
    }
    let row = http
        .get(format!("{base}/v1/workflows/{id}?wait=10"))
        .send()
        .await?;
    let out: Value = row.json().await?;
    let mut recv_lat: Vec<i64> = out["output"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    println!(
        "send -> recv (HTTP send to workflow wake-up): p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        pct(&mut recv_lat, 0.5),
        pct(&mut recv_lat, 0.99),
        recv_lat.len()
    );
    println!(
        "set_event -> waiting long-poll: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        pct(&mut poll_lat, 0.5),
        pct(&mut poll_lat, 0.99),
        poll_lat.len()
    );

    // Throughput through a queue (16 slots), enqueued through the Rust API by 16 tasks.
    let total = 2000;
    let t0 = Instant::now();
    let starts = futures::stream::iter(0..total).map(|_| {
        let rt = rt.clone();
        async move {
            rt.start(StartRequest {
                workflow: "noop".into(),
                input: json!({}),
                id: None,
                queue: Some("bench".into()),
            })
            .await
        }
    });
    let results: Vec<_> = starts.buffer_unordered(16).collect().await;
    for r in results {
        r?;
    }
    let enqueued = t0.elapsed();
    let pool = sqlx::PgPool::connect(&db).await?;
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM flowgate.workflows WHERE workflow = 'noop' AND status = 'SUCCESS'",
        )
        .fetch_one(&pool)
        .await?;
        if done >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = t0.elapsed();
    println!(
        "queue: {total} one-step workflows enqueued in {:.2} s, all done in {:.2} s = {:.0} workflows/s",
        enqueued.as_secs_f64(),
        all.as_secs_f64(),
        total as f64 / all.as_secs_f64()
    );

    app.stop().await;
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await?;
    Ok(())
}
