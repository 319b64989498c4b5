//! `flowgate gc --dry-run`: what a sweep would remove now, counted without deleting —
//! rows and bytes (`pg_column_size` of each row, payloads included) per table.

use std::fmt::Write as _;

use serde::Serialize;

use super::sweep::{Sweeper, CONSUMED, EXECUTOR_PRUNE_SECS, EXPIRED};

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
    pub async fn plan(&self) -> Result<Plan, sqlx::Error> {
        let mut conn = self.connect().await?;
        let mut plan = Plan::default();
        let idle = self.cfg.idle_secs();
        if idle > 0.0 {
            plan.idle_runs = sqlx::query_scalar(
                "SELECT count(*) FROM flowgate.workflows w
                 WHERE w.external AND w.status = 'PENDING' AND w.retention_secs IS DISTINCT FROM 0
                   AND flowgate.last_write(w.id) < now() - make_interval(secs => $1::float8)",
            )
            .bind(idle)
            .fetch_one(&mut conn)
            .await?;
        }
        let (n, b): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(pg_column_size(e.*)), 0)::bigint
             FROM flowgate.executors e
             WHERE heartbeat_at < now() - make_interval(secs => $1::float8)",
        )
        .bind(EXECUTOR_PRUNE_SECS)
        .fetch_one(&mut conn)
        .await?;
        plan.lines.push(line("executors", n, b));
        let Some(floor) = self.floor(&mut conn).await? else {
            return Ok(plan);
        };
        let def = self.cfg.retention_secs();
        let owned = [
            ("workflows", "id"),
            ("steps", "workflow_id"),
            ("events", "workflow_id"),
            ("messages", "workflow_id"),
            ("streams", "workflow_id"),
            ("stream_records", "workflow_id"),
            ("approval_uses", "workflow_id"),
            ("message_keys", "workflow_id"),
        ];
        for (table, col) in owned {
            let (n, b): (i64, i64) = sqlx::query_as(&format!(
                "SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0)::bigint
                 FROM flowgate.{table} t
                 WHERE t.{col} IN (SELECT w.id FROM flowgate.workflows w WHERE {EXPIRED})"
            ))
            .bind(floor)
            .bind(def)
            .fetch_one(&mut conn)
            .await?;
            plan.lines.push(line(table, n, b));
        }
        let (n, b): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), coalesce(sum(pg_column_size(m.*)), 0)::bigint
             FROM flowgate.messages m JOIN flowgate.workflows w ON w.id = m.workflow_id
             WHERE {CONSUMED}
               AND m.workflow_id NOT IN (SELECT w.id FROM flowgate.workflows w WHERE {EXPIRED})"
        ))
        .bind(floor)
        .bind(def)
        .fetch_one(&mut conn)
        .await?;
        plan.lines
            .push(line("messages (consumed, live runs)", n, b));
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
