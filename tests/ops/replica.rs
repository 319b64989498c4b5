//! Reads from a streaming standby: a private primary and a hot standby of its own
//! (`initdb`, `pg_basebackup -R`, two postgres processes), a writing gateway on the primary
//! and a reading gateway with `FLOWGATE_READ_URL`. Readers see every record once, in order,
//! while the standby serves, is paused, is stopped or is promoted; the primary serves close
//! to no reads. The rig and the fault scenario are shared with [`crate::replica_reads`].

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

pub(crate) const PRIMARY_READS: &str = "flowgate_read_queries_total{target=\"primary\"}";
pub(crate) const STANDBY_READS: &str = "flowgate_read_queries_total{target=\"standby\"}";

/// A primary, its standby, and the two gateways.
pub(crate) struct Rig {
    _dir: tempfile::TempDir,
    pub(crate) primary: PrivateCluster,
    standby: Option<PrivateCluster>,
    standby_dir: PathBuf,
    /// Reads from the primary only.
    pub(crate) writer: Proc,
    /// Reads from the standby (`FLOWGATE_READ_URL`).
    pub(crate) reader: Proc,
    pub(crate) http: reqwest::Client,
}

/// What the primary did, from its own statistics, and the reading gateway's read counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Load {
    /// Committed transactions (`pg_stat_database.xact_commit`).
    pub xacts: f64,
    /// Rows read from tables (`tup_returned + tup_fetched`).
    pub rows: f64,
    /// Rows read from one table (`seq_tup_read + idx_tup_fetch`), see [`Rig::settled_load`].
    pub table_rows: f64,
    /// The reading gateway's primary reads.
    pub primary_reads: f64,
    /// The reading gateway's standby reads.
    pub standby_reads: f64,
}

impl Load {
    pub(crate) fn since(&self, before: &Load) -> Load {
        Load {
            xacts: self.xacts - before.xacts,
            rows: self.rows - before.rows,
            table_rows: self.table_rows - before.table_rows,
            primary_reads: self.primary_reads - before.primary_reads,
            standby_reads: self.standby_reads - before.standby_reads,
        }
    }
}

impl Rig {
    /// `None` (the test is skipped) only when no PostgreSQL binaries are installed.
    pub(crate) async fn start(bound_ms: &str) -> Option<Rig> {
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

    /// Stops the gateways, then both servers.
    pub(crate) async fn stop(self) {
        drop(self.reader);
        drop(self.writer);
        if let Some(s) = self.standby {
            s.stop().await;
        }
        self.primary.stop().await;
    }

    /// Waits (bounded) until readiness says the standby serves (`true`) or is set aside.
    async fn wait_serving(&self, serving: bool) -> Value {
        self.wait_ready(
            |r| r["degraded"] == json!(!serving),
            &format!("serving={serving}"),
        )
        .await
    }

    /// Waits (bounded) until readiness reports the standby in `state`.
    async fn wait_state(&self, state: &str) -> Value {
        self.wait_ready(|r| r["standbys"][0]["state"] == json!(state), state)
            .await
    }

    async fn wait_ready(&self, ok: impl Fn(&Value) -> bool, what: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.readyz().await;
            if ok(&last) {
                assert_eq!(
                    last["ready"],
                    json!(true),
                    "a set-aside standby keeps readiness"
                );
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("readiness never showed {what}: {last}");
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
    pub(crate) async fn metrics(&self) -> HashMap<String, f64> {
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

    /// Waits (bounded) until the reading gateway's `key` is `value`.
    async fn wait_metric(&self, key: &str, value: f64) {
        let mut last = None;
        for _ in 0..100 {
            last = self.metrics().await.get(key).copied();
            if last == Some(value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{key} never became {value} (last {last:?})");
    }

    /// The primary's statistics with rows read from `flowgate.{table}`, then the reader's
    /// counters. Statistics are read after 11 s of quiet: an idle backend that reported less
    /// than a second ago reports again only 10 s later. Scraping `/metrics` reads
    /// `flowgate.workflows`, so it comes after: in the next window, not this one.
    pub(crate) async fn settled_load(&self, table: &str) -> Load {
        tokio::time::sleep(Duration::from_secs(11)).await;
        let load = self.primary_load(table).await;
        let m = self.metrics().await;
        Load {
            primary_reads: count(&m, PRIMARY_READS),
            standby_reads: count(&m, STANDBY_READS),
            ..load
        }
    }

    /// The primary's statistics (the router's counters left at zero).
    async fn primary_load(&self, table: &str) -> Load {
        let pool = PgPool::connect(&self.primary.url).await.unwrap();
        let (xacts, rows): (i64, i64) = sqlx::query_as(
            "SELECT sum(xact_commit)::bigint, sum(tup_returned + tup_fetched)::bigint
             FROM pg_stat_database",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let table_rows: Option<i64> = sqlx::query_scalar(
            "SELECT (seq_tup_read + coalesce(idx_tup_fetch, 0))::bigint
             FROM pg_stat_user_tables WHERE schemaname = 'flowgate' AND relname = $1",
        )
        .bind(table)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        Load {
            xacts: xacts as f64,
            rows: rows as f64,
            table_rows: table_rows.unwrap_or(0) as f64,
            primary_reads: 0.0,
            standby_reads: 0.0,
        }
    }

    /// Appends `from..to` from `writers` concurrent writers (each value is its own number).
    async fn write(&self, writers: i64, from: i64, to: i64) {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (http, url) = (
                self.http.clone(),
                format!("{}/v1/workflows/r/streams/s", self.writer.base),
            );
            tasks.push(tokio::spawn(async move {
                for i in (from..to).filter(|i| i % writers == w) {
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

pub(crate) fn count(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

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
    rig.write(WRITERS, 0, N).await;
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
    rig.stop().await;
}

/// What happens to the standby mid-stream.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `pg_wal_replay_pause()`, later resumed.
    Pause,
    /// The server is stopped, later started again.
    Stop,
    /// `pg_promote()`: it leaves recovery for good and never sees another write.
    Promote,
}

impl Fault {
    /// The state readiness reports while the fault lasts.
    fn state(self) -> &'static str {
        match self {
            Fault::Pause => "behind",
            Fault::Stop => "down",
            Fault::Promote => "promoted",
        }
    }

    async fn inject(self, rig: &mut Rig) {
        match self {
            Fault::Pause => rig.standby_sql("SELECT pg_wal_replay_pause()").await,
            Fault::Stop => rig.standby.take().unwrap().stop().await,
            Fault::Promote => rig.standby_sql("SELECT pg_promote()").await,
        }
    }

    /// Ends the fault; false if it cannot end (a promoted server stays a primary).
    async fn repair(self, rig: &mut Rig) -> bool {
        match self {
            Fault::Pause => rig.standby_sql("SELECT pg_wal_replay_resume()").await,
            Fault::Stop => {
                rig.standby = Some(PrivateCluster::start(&rig.standby_dir).await.unwrap())
            }
            Fault::Promote => return false,
        }
        true
    }
}

/// `writers` keep writing through `fault`: readers keep receiving from the primary within
/// the bound, a reader resuming past the standby's position misses and repeats nothing,
/// readiness names the fault, fallbacks are counted. Repaired, reads return to the standby;
/// a promoted standby is never read again.
async fn ride_out(fault: Fault, writers: i64) {
    let Some(mut rig) = Rig::start("300").await else {
        return;
    };
    let readers = Readers::open(&rig, READERS, None).await;
    rig.write(writers, 0, 40).await;
    readers.wait_for(40).await;
    fault.inject(&mut rig).await;
    rig.write(writers, 40, 80).await;
    readers.wait_for(80).await;
    let degraded = rig.wait_state(fault.state()).await;
    assert_eq!(degraded["degraded"], json!(true), "{degraded}");
    // The standby stopped following before offset 40: a resume from 59 is not served there.
    let resumed = Readers::open(&rig, 1, Some("59")).await;
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
    let repaired = fault.repair(&mut rig).await;
    if repaired {
        rig.wait_serving(true).await;
    } else {
        rig.wait_metric("flowgate_replica_promoted{standby=\"0\"}", 1.0)
            .await;
        rig.wait_metric("flowgate_replica_serving{standby=\"0\"}", 0.0)
            .await;
    }
    let standby_before = count(&rig.metrics().await, STANDBY_READS);
    rig.write(writers, 80, 120).await;
    rig.close().await;
    readers.finish((0..120).collect()).await;
    resumed.finish((60..120).collect()).await;
    let standby_after = count(&rig.metrics().await, STANDBY_READS);
    if repaired {
        assert!(
            standby_after > standby_before,
            "reads returned to the standby"
        );
    } else {
        assert_eq!(
            standby_after, standby_before,
            "a promoted standby is not read"
        );
        let still = rig.readyz().await;
        assert_eq!(still["standbys"][0]["state"], json!("promoted"), "{still}");
        assert_eq!(still["degraded"], json!(true), "{still}");
    }
    rig.stop().await;
}

/// Replay is paused mid-stream; then resumed.
#[tokio::test]
async fn paused_standby_falls_back_and_returns() {
    ride_out(Fault::Pause, WRITERS).await;
}

/// The standby is stopped mid-stream; then started again.
#[tokio::test]
async fn stopped_standby_falls_back_and_returns() {
    ride_out(Fault::Stop, WRITERS).await;
}

/// The standby is promoted mid-stream while one writer keeps writing: readers are served
/// by the primary, readiness and `flowgate_replica_promoted` say so, and the promoted
/// server (which never sees those writes) is not read again.
#[tokio::test]
async fn promoted_standby_is_set_aside() {
    ride_out(Fault::Promote, 1).await;
}
