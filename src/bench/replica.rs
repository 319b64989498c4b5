//! Reads from a streaming standby: a private primary and a hot standby of its own, a
//! writing gateway on the primary, and SSE readers on a gateway that reads from the primary,
//! then on one that reads from the standby (`FLOWGATE_READ_URL`), in one run. Reported per
//! phase: delivery latency (append → SSE frame) and transactions per delivered record on
//! each server, beyond those of the writes alone (a phase without readers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::stats::Summary;
use super::{spawn_server_env, stop_child};
use crate::private_pg::{find_bindir, PrivateCluster};
use crate::store::Store;

/// One phase's figures.
struct Phase {
    name: &'static str,
    latency: Summary,
    primary_xacts: i64,
    standby_xacts: i64,
    delivered: usize,
}

/// Transactions committed so far on the primary's and the standby's servers.
async fn commits(dbs: (&Store, &Store)) -> anyhow::Result<(i64, i64)> {
    Ok((
        dbs.0.server_xact_commits().await?,
        dbs.1.server_xact_commits().await?,
    ))
}

/// Appends `records` at `rate` through `writer` while `readers` SSE readers follow on
/// `reader` (none: writes only); returns latencies and the transaction deltas.
#[allow(clippy::too_many_arguments)]
async fn phase(
    http: &reqwest::Client,
    name: &'static str,
    writer: &str,
    reader: Option<&str>,
    readers: usize,
    records: usize,
    rate: f64,
    dbs: (&Store, &Store),
    settle: Duration,
) -> anyhow::Result<Phase> {
    let run = format!(
        "replica-{}-{}",
        name.replace(' ', "-"),
        rand::random::<u32>()
    );
    let r = http
        .put(format!("{writer}/v1/workflows/{run}"))
        .json(&json!({"workflow": "bench"}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "create run: {}", r.status());
    tokio::time::sleep(settle).await;
    let before = commits(dbs).await?;
    let start = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..records).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for _ in 0..reader.map_or(0, |_| readers) {
        let url = format!(
            "{}/v1/workflows/{run}/streams/s",
            reader.unwrap_or_default()
        );
        let resp = http.get(&url).send().await?;
        anyhow::ensure!(resp.status() == 200, "subscribe: {}", resp.status());
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = resp.bytes_stream().eventsource();
            let mut lat = Vec::new();
            while let Ok(Some(Ok(ev))) =
                tokio::time::timeout(Duration::from_secs(30), events.next()).await
            {
                if ev.event == "end" {
                    break;
                }
                let now = start.elapsed().as_nanos() as u64;
                if let Some(t) = ev.id.parse::<usize>().ok().and_then(|o| sent.get(o)) {
                    lat.push(now.saturating_sub(t.load(Ordering::Relaxed)) as f64 / 1e6);
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_millis(200 + readers as u64)).await;
    let url = format!("{writer}/v1/workflows/{run}/streams/s");
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    for (i, slot) in sent.iter().enumerate() {
        tick.tick().await;
        slot.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let r = http.post(&url).json(&[json!({"i": i})]).send().await?;
        anyhow::ensure!(r.status() == 200, "append: {}", r.status());
    }
    http.post(format!("{url}/close")).send().await?;
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    tokio::time::sleep(settle).await;
    let after = commits(dbs).await?;
    Ok(Phase {
        name,
        delivered: all.len(),
        latency: Summary::of(&mut all),
        primary_xacts: after.0 - before.0,
        standby_xacts: after.1 - before.1,
    })
}

/// The scenario: `readers` SSE readers, `records` appended at `rate` per second.
pub async fn run(
    http: &reqwest::Client,
    readers: usize,
    records: usize,
    rate: f64,
    settle: Duration,
) -> anyhow::Result<(String, Value)> {
    if find_bindir().is_none() {
        return Ok((
            "replica: skipped (no PostgreSQL server binaries)".into(),
            json!({"scenario": "replica", "skipped": true}),
        ));
    }
    let dir = std::env::temp_dir().join(format!("flowgate-bench-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let result = async {
        let primary = PrivateCluster::start(&dir.join("primary")).await?;
        let standby = PrivateCluster::start_standby(&primary, &dir.join("standby")).await;
        let result = match &standby {
            Ok(sb) => measure(http, &primary, sb, readers, records, rate, settle).await,
            Err(e) => Err(anyhow::anyhow!("standby: {e}")),
        };
        if let Ok(sb) = standby {
            sb.stop().await;
        }
        primary.stop().await;
        result
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    http: &reqwest::Client,
    primary: &PrivateCluster,
    standby: &PrivateCluster,
    readers: usize,
    records: usize,
    rate: f64,
    settle: Duration,
) -> anyhow::Result<(String, Value)> {
    let (mut w, writer) = spawn_server_env(http, &primary.url, &[]).await?;
    let (mut p, on_primary) = spawn_server_env(http, &primary.url, &[]).await?;
    let env = [("FLOWGATE_READ_URL", standby.url.clone())];
    let (mut s, on_standby) = spawn_server_env(http, &primary.url, &env).await?;
    let dbs = (
        Store {
            pool: PgPool::connect(&primary.url).await?,
        },
        Store {
            pool: PgPool::connect(&standby.url).await?,
        },
    );
    let dbs = (&dbs.0, &dbs.1);
    // The standby gateway serves from the standby once its probe has seen it caught up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut phases = Vec::new();
    for (name, reader) in [
        ("writes only", None),
        ("primary", Some(on_primary.as_str())),
        ("standby", Some(on_standby.as_str())),
    ] {
        phases.push(
            phase(
                http, name, &writer, reader, readers, records, rate, dbs, settle,
            )
            .await?,
        );
    }
    for c in [&mut w, &mut p, &mut s] {
        stop_child(c).await;
    }
    let base = (phases[0].primary_xacts, phases[0].standby_xacts);
    let mut text = format!("replica: {readers} SSE readers, {records} records at {rate}/s\n");
    let mut rows = Vec::new();
    for ph in &phases[1..] {
        let d = ph.delivered.max(1) as f64;
        let on_p = (ph.primary_xacts - base.0) as f64 / d;
        let on_s = (ph.standby_xacts - base.1) as f64 / d;
        text.push_str(&format!(
            "  readers on {:<8} delivered {:>7}  p50/p95/p99/max {}  primary xacts/delivered {:.4}  standby xacts/delivered {:.4}\n",
            ph.name, ph.delivered, ph.latency.cells(), on_p, on_s
        ));
        rows.push(
            json!({"readers_on": ph.name, "delivered": ph.delivered, "latency": ph.latency.json(),
            "primary_xacts_per_delivered": on_p, "standby_xacts_per_delivered": on_s}),
        );
    }
    let j = json!({"scenario": "replica", "readers": readers, "records": records, "rate": rate,
        "writes_only_primary_xacts": base.0, "phases": rows});
    Ok((text.trim_end().to_string(), j))
}
