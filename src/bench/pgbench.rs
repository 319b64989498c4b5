//! pgbench baselines: the row work of an HTTP write, done in SQL by pgbench on the same
//! database, so the throughput table can say what flowgate costs on top of Postgres.

use super::Bench;

/// Runs the baselines write to (`pgbench-0` … `pgbench-63`).
const RUNS: usize = 64;

/// A pgbench script: one write per transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Script {
    /// `flowgate.write_stream` (NOTIFY in the transaction), a stream per client.
    WriteStream,
    /// `flowgate.append_quiet` (no NOTIFY) on `n` streams shared by the clients.
    AppendQuiet(usize),
    /// `flowgate.set_event` (NOTIFY in the transaction), a run per client.
    SetEvent,
    /// `flowgate.set_event_quiet` (no NOTIFY), a run per client.
    SetEventQuiet,
    /// `flowgate.send` (NOTIFY in the transaction), a run per client.
    Send,
    /// `flowgate.send_quiet` (no NOTIFY), a run per client.
    SendQuiet,
}

impl Script {
    /// What the script does, for the table.
    pub fn describe(&self) -> String {
        match self {
            Script::WriteStream => "write_stream (NOTIFY in txn)".into(),
            Script::AppendQuiet(n) => format!("append_quiet on {n} streams (no NOTIFY)"),
            Script::SetEvent => "set_event (NOTIFY in txn)".into(),
            Script::SetEventQuiet => "set_event_quiet (no NOTIFY)".into(),
            Script::Send => "send (NOTIFY in txn)".into(),
            Script::SendQuiet => "send_quiet (no NOTIFY)".into(),
        }
    }

    fn sql(&self) -> String {
        let run = "'pgbench-' || (:client_id % 64)";
        let rec = r#"'{"i": 1, "text": "token"}'"#;
        match self {
            Script::WriteStream => {
                format!("SELECT flowgate.write_stream({run}, 's', {rec}::jsonb);\n")
            }
            Script::AppendQuiet(n) => format!(
                "SELECT flowgate.append_quiet('pgbench-0', 'q' || (:client_id % {n}), \
                 ARRAY[convert_to({rec}, 'UTF8')]);\n"
            ),
            Script::SetEvent => format!("SELECT flowgate.set_event({run}, 'k', {rec}::jsonb);\n"),
            Script::SetEventQuiet => {
                format!("SELECT flowgate.set_event_quiet({run}, 'k', {rec}::jsonb);\n")
            }
            Script::Send => format!("SELECT flowgate.send({run}, 't', {rec}::jsonb);\n"),
            Script::SendQuiet => {
                format!("SELECT * FROM flowgate.send_quiet({run}, 't', {rec}::jsonb, NULL);\n")
            }
        }
    }
}

/// Creates the runs the scripts write to.
pub async fn prepare(bench: &Bench) -> anyhow::Result<()> {
    for i in 0..RUNS {
        bench
            .store
            .ensure_bench_run(&format!("pgbench-{i}"))
            .await?;
    }
    Ok(())
}

/// Transactions per second of `script` with `clients` clients for `seconds`; `None` if
/// pgbench is not installed or failed.
pub async fn tps(bench: &Bench, script: Script, clients: usize, seconds: f64) -> Option<f64> {
    let bin = crate::private_pg::find_bindir()?.join("pgbench");
    let file = std::env::temp_dir().join(format!("flowgate-pgbench-{}.sql", rand::random::<u32>()));
    std::fs::write(&file, script.sql()).ok()?;
    let out = tokio::process::Command::new(bin)
        .args(["-n", "-f"])
        .arg(&file)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &seconds.ceil().max(1.0).to_string(),
        ])
        .arg(&bench.db_url)
        .output()
        .await
        .ok()?;
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        tracing::warn!(stderr = %String::from_utf8_lossy(&out.stderr), "pgbench failed");
    }
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| {
            l.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}
