//! SIGTERM hand-over, the second signal, and SIGKILL of the process serving SSE.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::fresh_database;
use crate::procs::*;

/// Appends `n` records to stream r/s through the SQL function (another "process"), pacing
/// them, then closes the stream.
fn spawn_writer(pool: PgPool, n: i64, pace: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..n {
            sqlx::query("SELECT flowgate.write_stream('r', 's', $1::jsonb)")
                .bind(json!(i))
                .execute(&pool)
                .await
                .unwrap();
            tokio::time::sleep(pace).await;
        }
        sqlx::query("SELECT flowgate.close_stream('r', 's')")
            .execute(&pool)
            .await
            .unwrap();
    })
}

async fn setup() -> (String, PgPool) {
    let db = fresh_database().await;
    let pool = PgPool::connect(&db).await.unwrap();
    (db, pool)
}

async fn create_run(pool: &PgPool) {
    sqlx::query("SELECT flowgate.ensure_run('r', 'external')")
        .execute(pool)
        .await
        .unwrap();
}

/// SIGTERM: readiness flips at once while records keep flowing; the stream then ends with a
/// retry hint; the client resumes on a second process with Last-Event-ID and ends up with
/// every record exactly once; the process exits 0 within delay + drain + a margin.
#[tokio::test]
async fn sigterm_hands_over_without_loss_or_repeat() {
    let (db, pool) = setup().await;
    let mut a = Proc::start(&[
        ("DATABASE_URL", &db),
        ("FLOWGATE_SHUTDOWN_DELAY", "1"),
        ("FLOWGATE_DRAIN_TIMEOUT", "1"),
    ])
    .await;
    let b = Proc::start(&[("DATABASE_URL", &db)]).await;
    create_run(&pool).await;
    let mut sse = open_sse(&format!("{}/v1/workflows/r/streams/s", a.base), None).await;
    const N: i64 = 400;
    let writer = spawn_writer(pool.clone(), N, Duration::from_millis(6));
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.signal(libc::SIGTERM);
    let t0 = Instant::now();
    let http = reqwest::Client::new();
    let mut readiness = 0;
    for _ in 0..20 {
        readiness = http
            .get(format!("{}/readyz", a.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if readiness == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let flipped = t0.elapsed();
    assert_eq!(readiness, 503, "readiness fails at once after SIGTERM");
    let still_serving = http
        .get(format!("{}/healthz", a.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        still_serving, 200,
        "serving goes on during the shutdown delay"
    );
    let exit = tokio::spawn(async move {
        let (code, _) = a.wait_exit(Duration::from_secs(20)).await;
        (code, t0.elapsed())
    });
    let (mut ids, ended) = read_until_end(&mut sse, Duration::from_secs(20)).await;
    let stream_closed = t0.elapsed();
    assert!(
        !ended,
        "the first process's stream ended by shutdown, before the close marker"
    );
    assert!(
        sse.raw.lock().unwrap().contains("retry: "),
        "a retry hint before the end"
    );
    let last = ids.last().expect("records before shutdown").to_string();
    let mut resumed = open_sse(&format!("{}/v1/workflows/r/streams/s", b.base), Some(&last)).await;
    let (rest, ended) = read_until_end(&mut resumed, Duration::from_secs(30)).await;
    assert!(ended);
    ids.extend(rest);
    assert_eq!(
        ids,
        (0..N).collect::<Vec<_>>(),
        "every record exactly once across the hand-over"
    );
    let (code, exited) = exit.await.unwrap();
    assert_eq!(code, Some(0));
    assert!(
        exited < Duration::from_secs(1 + 1 + 5),
        "exit within delay + drain + margin: {exited:?}"
    );
    writer.await.unwrap();
    eprintln!("shutdown timeline: readiness 503 after {flipped:?}, SSE ended after {stream_closed:?}, exit after {exited:?}");
}

/// A second signal exits at once.
#[tokio::test]
async fn second_signal_exits_at_once() {
    let (db, _pool) = setup().await;
    let mut a = Proc::start(&[("DATABASE_URL", &db), ("FLOWGATE_SHUTDOWN_DELAY", "30")]).await;
    a.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.signal(libc::SIGINT);
    let (code, took) = a.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(5));
}

/// SIGKILL of the process serving SSE: the client resumes on another process without gaps
/// or repeats.
#[tokio::test]
async fn sigkill_reader_resumes_on_another_process() {
    let (db, pool) = setup().await;
    let mut a = Proc::start(&[("DATABASE_URL", &db)]).await;
    let b = Proc::start(&[("DATABASE_URL", &db)]).await;
    create_run(&pool).await;
    let mut sse = open_sse(&format!("{}/v1/workflows/r/streams/s", a.base), None).await;
    const N: i64 = 300;
    let writer = spawn_writer(pool.clone(), N, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.signal(libc::SIGKILL);
    let (mut ids, ended) = read_until_end(&mut sse, Duration::from_secs(20)).await;
    assert!(!ended);
    let (code, _) = a.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(code, None, "killed by a signal");
    let last = ids.last().expect("records before the kill").to_string();
    let mut resumed = open_sse(&format!("{}/v1/workflows/r/streams/s", b.base), Some(&last)).await;
    let (rest, ended) = read_until_end(&mut resumed, Duration::from_secs(30)).await;
    assert!(ended);
    ids.extend(rest);
    assert_eq!(ids, (0..N).collect::<Vec<_>>());
    writer.await.unwrap();
}
