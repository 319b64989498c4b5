//! The scenarios of `flowgate bench`, in the order they run: each chosen one runs its
//! measurements and hands every result row to [`Results`], which prints it at once and keeps
//! its JSON.

use std::time::Duration;

use serde_json::Value;

use super::{
    cost, dbos, delivery, ds_table, fanout, nchan, num_cpus, queries, replica, runtime, sweep,
    throughput, wakeup, Bench, BenchArgs, Row,
};

/// Every scenario, in running order.
const ORDER: [&str; 12] = [
    "delivery",
    "wakeup",
    "health",
    "queries",
    "queue",
    "dbos",
    "throughput",
    "sweep",
    "durable",
    "cost",
    "replica",
    "fanout",
];

/// The rows so far: each printed as it arrives, and kept as JSON.
#[derive(Default)]
struct Results(Vec<Value>);

impl Results {
    fn add(&mut self, (line, json): Row) {
        println!("{line}");
        self.0.push(json);
    }
}

/// Runs the chosen scenarios, printing each line; returns their JSON.
pub(super) async fn run(bench: &mut Bench, args: &BenchArgs) -> anyhow::Result<Vec<Value>> {
    let mut out = Results::default();
    for name in ORDER.into_iter().filter(|n| chosen(args, n)) {
        scenario(name, bench, args, &mut out).await?;
    }
    Ok(out.0)
}

/// True if `name` runs. The smoke run of every scenario includes DBOS when its venv is
/// here (CI sets it up).
fn chosen(args: &BenchArgs, name: &str) -> bool {
    let named = args.only.iter().any(|o| o == name);
    let all = args.only.len() >= 7;
    named || (name == "dbos" && args.smoke && all && dbos::available())
}

async fn scenario(
    name: &str,
    bench: &mut Bench,
    args: &BenchArgs,
    out: &mut Results,
) -> anyhow::Result<()> {
    let smoke = args.smoke;
    match name {
        "delivery" => {
            for &subs in &args.subscribers {
                for writer in [delivery::Writer::Http, delivery::Writer::Sql] {
                    let r = delivery::run(bench, writer, subs, args.records, args.rate).await?;
                    out.add((r.line(), r.json()));
                }
            }
        }
        "wakeup" => {
            let trials = if smoke { 20 } else { 300 };
            out.add(wakeup::event_wakeup(bench, trials).await?);
            out.add(runtime::message_wakeup(bench, trials).await?);
        }
        "health" => {
            let (secs, fib) = if smoke { (0.5, 20) } else { (20.0, 34) };
            out.add(runtime::responsiveness(bench, secs, fib).await?);
        }
        "queries" => {
            let (records, settle) = if smoke { (20, 0.2) } else { (200, 11.0) };
            for subs in [1, if smoke { 10 } else { 1000 }] {
                out.add(queries::per_record(bench, subs, records, settle).await?);
            }
        }
        "queue" => {
            let total = if smoke { 50 } else { 5000 };
            for processes in [1, 2] {
                out.add(runtime::queue_throughput(bench, total, processes).await?);
            }
        }
        "dbos" => {
            let n = if smoke { 20 } else { 300 };
            dbos::run(bench, &args.database_url, n)
                .await?
                .into_iter()
                .for_each(|r| out.add(r));
        }
        "throughput" => {
            let settle = if smoke { 0.2 } else { 11.0 };
            let rows = throughput::run(bench, args.seconds, settle).await?;
            rows.into_iter().for_each(|r| out.add(r));
        }
        "sweep" => {
            let per_run = 1000.min(args.sweep_records.max(1));
            let runs = (args.sweep_records / per_run).max(1);
            let secs = if smoke { 0.5 } else { 20.0 };
            out.add(sweep::run(bench, runs, per_run, secs).await?);
        }
        "durable" => {
            let rows = ds_table::run(bench, smoke, !args.no_ds_reference).await?;
            rows.into_iter().for_each(|r| out.add(r));
        }
        "cost" => out.add(cost::per_request(bench, if smoke { 100 } else { 3000 }).await?),
        "replica" => {
            let (readers, records, settle) = if smoke {
                (5, 20, 0.2)
            } else {
                (100, 1000, 11.0)
            };
            let settle = Duration::from_secs_f64(settle);
            out.add(replica::run(&bench.http, readers, records, args.rate, settle).await?);
        }
        "fanout" => fan_out(bench, args, out).await?,
        _ => unreachable!("every scenario of ORDER is matched"),
    }
    Ok(())
}

/// SSE fan-out against flowgate, and against Nchan beside it with `--nchan`.
async fn fan_out(bench: &Bench, args: &BenchArgs, out: &mut Results) -> anyhow::Result<()> {
    let nchan = if args.nchan {
        Some(nchan::Nchan::start(&bench.http, num_cpus()).await?)
    } else {
        None
    };
    for &conns in &args.fanout {
        let mut targets = vec![fanout::flowgate(bench).await?];
        if let Some(n) = &nchan {
            let ch = format!("c{}", rand::random::<u32>());
            targets.push(fanout::Target {
                name: "nchan",
                sub_url: format!("{}/sub/{ch}", n.base),
                pub_url: format!("{}/pub/{ch}", n.base),
                array: false,
                pids: n.pids(),
            });
        }
        for t in &targets {
            out.add(fanout::run(&bench.http, t, conns, args.fanout_seconds).await?);
        }
    }
    Ok(())
}
