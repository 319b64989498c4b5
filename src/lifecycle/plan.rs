//! `flowgate gc --dry-run`: what a sweep would remove now, counted without deleting —
//! rows and bytes (`pg_column_size` of each row, payloads included) per table.

use std::fmt::Write as _;

use serde::Serialize;

use super::sweep::{Sweeper, EXECUTOR_PRUNE_SECS};
use crate::error::StoreError;
use crate::store::retention::{self, plan as store};

/// Rows and bytes of one table that would go.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanLine {
    /// Table (or `messages (consumed, live runs)`).
    pub table: String,
    /// Rows.
    pub rows: i64,
    /// Bytes of those rows.
    pub bytes: i64,
}

/// What a sweep would do now.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    /// External runs that would be ended (CANCELLED) for being idle.
    pub idle_runs: i64,
    /// Rows per table.
    pub lines: Vec<PlanLine>,
}

impl Plan {
    /// Rows of `table` that would go.
    pub fn rows(&self, table: &str) -> i64 {
        self.lines
            .iter()
            .filter(|l| l.table == table)
            .map(|l| l.rows)
            .sum()
    }

    /// The text `flowgate gc --dry-run` prints.
    pub fn render(&self) -> String {
        let mut out = String::from("flowgate gc --dry-run: nothing is deleted\n");
        let _ = writeln!(out, "{:<34} {:>12} {:>14}", "table", "rows", "bytes");
        for l in &self.lines {
            let _ = writeln!(out, "{:<34} {:>12} {:>14}", l.table, l.rows, l.bytes);
        }
        let total: i64 = self.lines.iter().map(|l| l.bytes).sum();
        let _ = writeln!(out, "{:<34} {:>12} {:>14}", "total", "", total);
        let _ = writeln!(out, "idle external runs to end: {}", self.idle_runs);
        out
    }
}

impl Sweeper {
    /// Counts what a sweep would remove now.
    pub async fn plan(&self) -> Result<Plan, StoreError> {
        let mut conn = self.connect().await?;
        let mut plan = Plan::default();
        let idle = self.cfg.idle_secs();
        if idle > 0.0 {
            plan.idle_runs = retention::idle::count_idle(&mut conn, idle).await?;
        }
        let (n, b) = store::count_dead_executors(&mut conn, EXECUTOR_PRUNE_SECS).await?;
        plan.lines.push(line("executors", n, b));
        let Some(floor) = self.floor(&mut conn).await? else {
            return Ok(plan);
        };
        let def = self.cfg.retention_secs();
        for c in store::count_expired(&mut conn, floor, def).await? {
            plan.lines.push(PlanLine {
                table: c.table,
                rows: c.rows,
                bytes: c.bytes,
            });
        }
        Ok(plan)
    }
}

fn line(table: &str, rows: i64, bytes: i64) -> PlanLine {
    PlanLine {
        table: table.to_string(),
        rows,
        bytes,
    }
}
