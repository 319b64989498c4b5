//! DBOS beside flowgate on the same DBOS stream and events: a real DBOS app (the pinned
//! `dbos` package in `.venv-dbos`) writes `write_stream` records and `set_event` ticks,
//! each value stamped with the wall clock just before the write. Read at the same time by
//! flowgate (SSE of the stream, a long-poll per tick, through its DBOS source) and by DBOS's
//! own client (`DBOSClient.read_stream`, `DBOSClient.get_event`, LISTEN/NOTIFY on), in a
//! separate process. Two figures per reader, in ms: from the stamp taken just before the
//! write call (DBOS's write transaction included), and from the moment the write call
//! returned, i.e. committed (the workflow's output lists those moments).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::stats::Summary;
use super::{spawn_server_env, stop_child, Bench};

/// Milliseconds between writes in the DBOS workflow.
const GAP_MS: u32 = 20;

fn python() -> PathBuf {
    std::env::var_os("FLOWGATE_DBOS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".venv-dbos/bin/python"))
}

const SCRIPT: &str = "tests/dbos/app.py";

/// True if the DBOS venv and test app are here (run from the repository root).
pub fn available() -> bool {
    python().exists() && PathBuf::from(SCRIPT).exists()
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// A DBOS test-app process driven line by line.
struct Py {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Py {
    async fn start(db_url: &str, client: bool) -> anyhow::Result<Py> {
        let mut child = Command::new(python())
            .arg(SCRIPT)
            .env("DBOS_SYSTEM_DATABASE_URL", db_url)
            .env("FG_MODE", if client { "client" } else { "app" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("stdout"))?;
        let mut py = Py {
            child,
            stdin,
            lines: BufReader::new(out).lines(),
        };
        py.expect("launched").await?;
        Ok(py)
    }

    async fn send(&mut self, cmd: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }

    async fn expect(&mut self, word: &str) -> anyhow::Result<String> {
        let within = Duration::from_secs(120);
        loop {
            let line = tokio::time::timeout(within, self.lines.next_line()).await??;
            let line = line.ok_or_else(|| anyhow::anyhow!("DBOS app exited before `{word}`"))?;
            if let Some(rest) = line.strip_prefix(word) {
                return Ok(rest.trim().to_string());
            }
        }
    }

    async fn quit(mut self) {
        let _ = self.send("quit").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// One read: (record or tick index, the value's stamp, when the reader had it), epoch ms.
type Sample = (usize, f64, f64);

/// flowgate's SSE of the bench stream: one sample per record until `end`.
async fn flowgate_stream(
    http: reqwest::Client,
    url: String,
    n: usize,
) -> anyhow::Result<Vec<Sample>> {
    let resp = http.get(url).send().await?;
    anyhow::ensure!(resp.status() == 200, "DBOS stream SSE: {}", resp.status());
    let mut events = resp.bytes_stream().eventsource();
    let mut lat = Vec::with_capacity(n);
    while let Some(ev) = events.next().await {
        let ev = ev?;
        if ev.event == "end" {
            break;
        }
        let at = now_ms();
        let v: Value = serde_json::from_str(&ev.data)?;
        lat.push(sample(&v, at));
    }
    Ok(lat)
}

/// flowgate's long-poll on each tick event in turn.
async fn flowgate_events(
    http: reqwest::Client,
    base: String,
    n: usize,
) -> anyhow::Result<Vec<Sample>> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let r = http
            .get(format!("{base}/events/tick_{i}?after=0&timeout=30"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "tick {i}: {}", r.status());
        let at = now_ms();
        let v: Value = r.json().await?;
        lat.push(sample(&v["value"], at));
    }
    Ok(lat)
}

fn sample(v: &Value, at: f64) -> Sample {
    let i = v["i"].as_u64().unwrap_or(0) as usize;
    (i, v["t"].as_f64().unwrap_or(0.0) * 1000.0, at)
}

fn line(what: &str, s: &Summary) -> String {
    format!("dbos     {what:<40} p50/p95/p99/max ms {}", s.cells())
}

/// Latencies from the stamp, and from the commit (`committed[i]`, epoch seconds).
fn latencies(samples: &[Sample], committed: &Value) -> (Summary, Summary) {
    let mut from_stamp: Vec<f64> = samples.iter().map(|(_, t, at)| at - t).collect();
    let mut from_commit: Vec<f64> = samples
        .iter()
        .filter_map(|(i, _, at)| Some(at - committed.get(*i)?.as_f64()? * 1000.0))
        .collect();
    (Summary::of(&mut from_stamp), Summary::of(&mut from_commit))
}

fn dbos_samples(v: &Value) -> Vec<Sample> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s[0].as_u64()? as usize, s[1].as_f64()?, s[2].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the scenario with `n` records and `n` ticks.
pub async fn run(bench: &Bench, admin_url: &str, n: usize) -> anyhow::Result<Vec<(String, Value)>> {
    anyhow::ensure!(
        available(),
        "the dbos scenario needs the DBOS venv: python3 -m venv .venv-dbos && \
         .venv-dbos/bin/pip install -r tests/dbos/requirements.txt (run from the repository root)"
    );
    let admin = crate::store::Store {
        pool: sqlx::PgPool::connect(admin_url).await?,
    };
    let db_name = format!("flowgate_bench_dbos_{:08x}", rand::random::<u32>());
    admin.create_database(&db_name).await?;
    let db_url = format!(
        "{}/{db_name}",
        admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url)
    );
    let result = measure(bench, &db_url, n).await;
    admin.drop_database(&db_name).await?;
    result
}

async fn measure(bench: &Bench, db_url: &str, n: usize) -> anyhow::Result<Vec<(String, Value)>> {
    let mut app = Py::start(db_url, false).await?;
    let env = [("FLOWGATE_DBOS_URL", db_url.to_string())];
    let (mut server, base) = spawn_server_env(&bench.http, &bench.db_url, &env).await?;
    let mut client = Py::start(db_url, true).await?;
    let wf = format!("bench-{:08x}", rand::random::<u32>());
    app.send(&format!("bench {wf} {n} {GAP_MS}")).await?;
    app.expect("started").await?;
    let run = format!("{base}/v1/dbos/workflows/{wf}");
    let sse = tokio::spawn(flowgate_stream(
        bench.http.clone(),
        format!("{run}/streams/bench"),
        n,
    ));
    let events = tokio::spawn(flowgate_events(bench.http.clone(), run.clone(), n));
    client.send(&format!("measure {wf} {n}")).await?;
    client.expect("measuring").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let go = bench
        .http
        .post(format!("{run}/messages"))
        .json(&json!({"topic": "go", "body": true}))
        .send()
        .await?;
    anyhow::ensure!(go.status() == 202, "go message: {}", go.status());
    let fg_stream = sse.await??;
    let fg_events = events.await??;
    let dbos: Value = serde_json::from_str(&client.expect("measured").await?)?;
    app.send(&format!("result {wf}")).await?;
    let done: Value = serde_json::from_str(&app.expect("result").await?)?;
    client.quit().await;
    app.quit().await;
    stop_child(&mut server).await;
    let readers = [
        ("write_stream", "flowgate SSE", fg_stream, &done["stream"]),
        (
            "write_stream",
            "DBOS read_stream",
            dbos_samples(&dbos["read_stream"]),
            &done["stream"],
        ),
        (
            "set_event",
            "flowgate long-poll",
            fg_events,
            &done["events"],
        ),
        (
            "set_event",
            "DBOS get_event",
            dbos_samples(&dbos["get_event"]),
            &done["events"],
        ),
    ];
    let mut out = Vec::new();
    for (write, reader, samples, committed) in readers {
        let (stamp, commit) = latencies(&samples, committed);
        for (from, s) in [("call", stamp), ("commit", commit)] {
            out.push((
                line(&format!("{write} {from} → {reader}"), &s),
                json!({"scenario": "dbos", "write": write, "from": from, "reader": reader,
                       "records": n, "gap_ms": GAP_MS, "latency": s.json()}),
            ));
        }
    }
    Ok(out)
}
