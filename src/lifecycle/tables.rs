//! Sizes of flowgate's tables for `/metrics`, read at scrape time from the catalog
//! (`pg_total_relation_size` and the planner's row estimate): no table is scanned.

use std::fmt::Write as _;

use sqlx::PgPool;

/// `flowgate_table_bytes` and `flowgate_table_rows_estimate` per table, in the text format
/// (empty if the catalog cannot be read).
pub async fn table_metrics(pool: &PgPool) -> String {
    let rows: Result<Vec<(String, i64, f64)>, _> = sqlx::query_as(
        "SELECT c.relname::text, pg_total_relation_size(c.oid), greatest(c.reltuples, 0)::float8
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'flowgate' AND c.relkind IN ('r', 'p')
         ORDER BY c.relname",
    )
    .fetch_all(pool)
    .await;
    let Ok(rows) = rows else {
        return String::new();
    };
    let mut out = String::from(
        "# HELP flowgate_table_bytes Size of each flowgate table with its indexes and TOAST\n\
         # TYPE flowgate_table_bytes gauge\n",
    );
    for (t, bytes, _) in &rows {
        let _ = writeln!(out, "flowgate_table_bytes{{table=\"{t}\"}} {bytes}");
    }
    out.push_str(
        "# HELP flowgate_table_rows_estimate Planner's row estimate of each flowgate table\n\
         # TYPE flowgate_table_rows_estimate gauge\n",
    );
    for (t, _, n) in &rows {
        let _ = writeln!(out, "flowgate_table_rows_estimate{{table=\"{t}\"}} {n}");
    }
    out
}
