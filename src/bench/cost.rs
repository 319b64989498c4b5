//! Where one append's microseconds go: one writer sends single-record appends back to back,
//! and the wall time per request is set beside the CPU time per request of the server
//! process, of the Postgres backends serving the bench database, and of this client.
//!
//! CPU times come from `/proc/<pid>/stat` (utime + stime, in clock ticks), so they are only
//! as fine as the tick (10 ms) spread over all the requests. What is left of the wall time
//! is waiting: mostly the WAL flush (fsync) of each commit, and scheduling on a busy machine.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::json;

use super::{Bench, Row};

/// Seconds of CPU (user + system) a process has used, or 0 if it is gone.
fn cpu_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// CPU seconds of every backend connected to the bench database, by pid.
async fn backends(bench: &Bench) -> anyhow::Result<HashMap<i32, f64>> {
    let pids = bench.store.backend_pids().await?;
    Ok(pids
        .into_iter()
        .map(|p| (p, cpu_of(&p.to_string())))
        .collect())
}

/// `requests` sequential single-record appends; microseconds per request by where they go.
pub async fn per_request(bench: &Bench, requests: usize) -> anyhow::Result<Row> {
    let run = format!("cost-{:08x}", rand::random::<u32>());
    bench.create_run(&run).await?;
    let url = bench.url(&format!("/v1/workflows/{run}/streams/s"));
    let server = bench
        .server_pid()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let me = std::process::id().to_string();
    // Warm up connections and statement caches.
    for _ in 0..50 {
        bench.http.post(&url).body("[1]").send().await?;
    }
    let (pg0, srv0, cli0) = (backends(bench).await?, cpu_of(&server), cpu_of(&me));
    let start = Instant::now();
    for i in 0..requests {
        let r = bench
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(format!("[{{\"i\":{i},\"text\":\"token\"}}]"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "append: {}", r.status());
    }
    let wall = start.elapsed().as_secs_f64();
    let (pg1, srv1, cli1) = (backends(bench).await?, cpu_of(&server), cpu_of(&me));
    let pg: f64 = pg1
        .iter()
        .map(|(p, c)| c - pg0.get(p).copied().unwrap_or(0.0))
        .sum();
    let us = |s: f64| s * 1e6 / requests as f64;
    let (w, s, p, c) = (us(wall), us(srv1 - srv0), us(pg), us(cli1 - cli0));
    Ok((
        format!(
            "cost     1 writer, {requests} appends: {w:.0} µs/request wall = server CPU {s:.0} + Postgres backends CPU {p:.0} + bench client CPU {c:.0} + waiting {:.0}",
            (w - s - p - c).max(0.0)
        ),
        json!({"scenario": "cost", "requests": requests, "wall_us": w, "server_cpu_us": s,
               "postgres_cpu_us": p, "client_cpu_us": c}),
    ))
}
