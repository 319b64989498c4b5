//! Reads from a streaming standby: a private primary and a hot standby of its own
//! (`initdb`, `pg_basebackup -R`, two postgres processes), a writing gateway on the primary
//! and a reading gateway with `FLOWGATE_READ_URL`. Readers see every record once, in order,
//! while the standby serves, is paused, or is stopped; the primary serves close to no reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::PgPool;

use flowgate::private_pg::{find_bindir, PrivateCluster};

use crate::procs::*;

const READERS: usize = 4;
const WRITERS: i64 = 4;

/// A primary, its standby, and the two gateways.
struct Rig {
    _dir: tempfile::TempDir,
    primary: PrivateCluster,
    standby: Option<PrivateCluster>,
    standby_dir: PathBuf,
    writer: Proc,
    reader: Proc,
    http: reqwest::Client,
}

impl Rig {
    /// `None` (the test is skipped) only when no PostgreSQL binaries are installed.
    async fn start(bound_ms: &str) -> Option<Rig> {
        if find_bindir().is_none() {
            eprintln!("skipped: no PostgreSQL server binaries installed");
            return None;
        }
        let dir = crate::restart::scratch();
        let primary = PrivateCluster::start(&dir.path().join("primary"))
            .await
            .unwrap();
        let writer = Proc::start(&[("DATABASE_URL", &primary.url)]).await;
        let standby_dir = dir.path().join("standby");
        let standby = PrivateCluster::start_standby(&primary, &standby_dir)
            .await
            .unwrap();
        let reader = Proc::start(&[
            ("DATABASE_URL", &primary.url),
            ("FLOWGATE_READ_URL", &standby.url),
            ("FLOWGATE_READ_LAG_BOUND_MS", bound_ms),
            ("FLOWGATE_READ_PROBE_MS", "100"),
        ])
        .await;
        let rig = Rig {
            _dir: dir,
            primary,
            standby: Some(standby),
            standby_dir,
            writer,
            reader,
            http: reqwest::Client::new(),
        };
        rig.wait_serving(true).await;
        let put = rig
            .http
            .put(format!("{}/v1/workflows/r", rig.writer.base))
            .json(&json!({"workflow": "external"}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
        Some(rig)
    }

    /// Waits (bounded) until readiness says the standby serves (`true`) or is set aside.
    async fn wait_serving(&self, serving: bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.readyz().await;
            if last["degraded"] == json!(!serving) {
                assert_eq!(
                    last["ready"],
                    json!(true),
                    "a set-aside standby keeps readiness"
                );
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("standby never reported serving={serving}: {last}");
    }

    async fn readyz(&self) -> Value {
        self.http
            .get(format!("{}/readyz", self.reader.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The reading gateway's counters: `name{labels}` → value.
    async fn metrics(&self) -> HashMap<String, f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.reader.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// Appends `from..to` from four concurrent writers (each value is its own number).
    async fn write(&self, from: i64, to: i64) {
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (http, url) = (
                self.http.clone(),
                format!("{}/v1/workflows/r/streams/s", self.writer.base),
            );
            tasks.push(tokio::spawn(async move {
                for i in (from..to).filter(|i| i % WRITERS == w) {
                    let r = http.post(&url).json(&[json!(i)]).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    async fn close(&self) {
        let r = self
            .http
            .post(format!(
                "{}/v1/workflows/r/streams/s/close",
                self.writer.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn standby_sql(&self, sql: &str) {
        let url = &self.standby.as_ref().unwrap().url;
        let pool = PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// SSE readers on the reading gateway, each collecting offsets as they arrive.
struct Readers {
    seen: Vec<Arc<Mutex<Vec<i64>>>>,
    tasks: Vec<tokio::task::JoinHandle<bool>>,
}

impl Readers {
    async fn open(rig: &Rig, n: usize, last_event_id: Option<&str>) -> Readers {
        let mut r = Readers {
            seen: Vec::new(),
            tasks: Vec::new(),
        };
        for _ in 0..n {
            let url = format!("{}/v1/workflows/r/streams/s", rig.reader.base);
            let mut sse = open_sse(&url, last_event_id).await;
            let seen = Arc::new(Mutex::new(Vec::new()));
            let copy = seen.clone();
            r.seen.push(seen);
            r.tasks.push(tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
                loop {
                    match tokio::time::timeout_at(deadline, sse.events.next()).await {
                        Ok(Some(ev)) if ev.event == "end" => return true,
                        Ok(Some(ev)) => copy.lock().unwrap().push(ev.id.parse().unwrap()),
                        Ok(None) | Err(_) => return false,
                    }
                }
            }));
        }
        r
    }

    /// Waits (bounded) until every reader has `n` records.
    async fn wait_for(&self, n: usize) {
        for _ in 0..400 {
            if self.seen.iter().all(|s| s.lock().unwrap().len() >= n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let got: Vec<usize> = self.seen.iter().map(|s| s.lock().unwrap().len()).collect();
        panic!("readers stalled: want {n} each, have {got:?}");
    }

    /// Every reader ended and saw exactly `expect`.
    async fn finish(self, expect: Vec<i64>) {
        for (t, s) in self.tasks.into_iter().zip(self.seen) {
            assert!(t.await.unwrap(), "reader saw the end");
            assert_eq!(*s.lock().unwrap(), expect, "every record once, in order");
        }
    }
}

fn count(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

const PRIMARY_READS: &str = "flowgate_read_queries_total{target=\"primary\"}";
const STANDBY_READS: &str = "flowgate_read_queries_total{target=\"standby\"}";

/// Four writers on the primary, four SSE readers on a gateway reading from the standby:
/// every reader sees 0..N-1 once, in order, and the primary serves close to no reads.
#[tokio::test]
async fn standby_serves_the_readers() {
    let Some(rig) = Rig::start("2000").await else {
        return;
    };
    let readers = Readers::open(&rig, READERS, None).await;
    let before = rig.metrics().await;
    const N: i64 = 200;
    rig.write(0, N).await;
    rig.close().await;
    readers.finish((0..N).collect()).await;
    let after = rig.metrics().await;
    let primary = count(&after, PRIMARY_READS) - count(&before, PRIMARY_READS);
    let standby = count(&after, STANDBY_READS) - count(&before, STANDBY_READS);
    let delivered = (N as usize * READERS) as f64;
    assert!(standby > 0.0, "the standby served the reads");
    assert!(
        primary / delivered < 0.02,
        "primary reads per delivered record: {primary} / {delivered}"
    );
    drop(rig.reader);
    drop(rig.writer);
    rig.standby.unwrap().stop().await;
    rig.primary.stop().await;
}

/// Replay is paused mid-stream: readers keep receiving from the primary within the bound,
/// a reader resuming past the standby's position misses and repeats nothing, readiness
/// says degraded; resumed, reads return to the standby.
#[tokio::test]
async fn paused_standby_falls_back_and_returns() {
    let Some(rig) = Rig::start("300").await else {
        return;
    };
    let readers = Readers::open(&rig, READERS, None).await;
    rig.write(0, 40).await;
    readers.wait_for(40).await;
    rig.standby_sql("SELECT pg_wal_replay_pause()").await;
    rig.write(40, 80).await;
    readers.wait_for(80).await;
    let degraded = rig.wait_serving(false).await;
    assert_eq!(
        degraded["standbys"][0]["state"],
        json!("behind"),
        "{degraded}"
    );
    // The standby stopped before offset 40: a resume from 59 is served by the primary.
    let resumed = Readers::open(&rig, 1, Some("59")).await;
    let m = rig.metrics().await;
    assert!(count(&m, "flowgate_read_fallbacks_total{reason=\"lag\"}") >= 1.0);
    rig.standby_sql("SELECT pg_wal_replay_resume()").await;
    rig.wait_serving(true).await;
    let standby_before = count(&rig.metrics().await, STANDBY_READS);
    rig.write(80, 120).await;
    rig.close().await;
    readers.finish((0..120).collect()).await;
    resumed.finish((60..120).collect()).await;
    let standby_after = count(&rig.metrics().await, STANDBY_READS);
    assert!(
        standby_after > standby_before,
        "reads returned to the standby"
    );
    drop(rig.reader);
    drop(rig.writer);
    rig.standby.unwrap().stop().await;
    rig.primary.stop().await;
}

/// The standby is stopped mid-stream: readers keep receiving from the primary, readiness
/// says the standby is down; started again, it serves again; nothing lost or repeated.
#[tokio::test]
async fn stopped_standby_falls_back_and_returns() {
    let Some(mut rig) = Rig::start("300").await else {
        return;
    };
    let readers = Readers::open(&rig, READERS, None).await;
    rig.write(0, 40).await;
    readers.wait_for(40).await;
    rig.standby.take().unwrap().stop().await;
    rig.write(40, 80).await;
    readers.wait_for(80).await;
    let degraded = rig.wait_serving(false).await;
    assert_eq!(
        degraded["standbys"][0]["state"],
        json!("down"),
        "{degraded}"
    );
    let m = rig.metrics().await;
    let fallbacks: f64 = ["error", "lag", "unavailable"]
        .iter()
        .map(|r| {
            count(
                &m,
                &format!("flowgate_read_fallbacks_total{{reason=\"{r}\"}}"),
            )
        })
        .sum();
    assert!(fallbacks >= 1.0, "fallbacks are counted");
    rig.standby = Some(PrivateCluster::start(&rig.standby_dir).await.unwrap());
    rig.wait_serving(true).await;
    let standby_before = count(&rig.metrics().await, STANDBY_READS);
    rig.write(80, 120).await;
    rig.close().await;
    readers.finish((0..120).collect()).await;
    let standby_after = count(&rig.metrics().await, STANDBY_READS);
    assert!(
        standby_after > standby_before,
        "reads returned to the standby"
    );
    drop(rig.reader);
    drop(rig.writer);
    rig.standby.unwrap().stop().await;
    rig.primary.stop().await;
}
