//! Sizes of flowgate's tables for `/metrics`, read at scrape time from the catalog
//! (`pg_total_relation_size` and the planner's row estimate): no table is scanned.

use std::fmt::Write as _;

use crate::store::Store;

/// `flowgate_table_bytes` and `flowgate_table_rows_estimate` per table, in the text format
/// (empty if the catalog cannot be read).
pub async fn table_metrics(store: &Store) -> String {
    let Ok(rows) = store.table_sizes().await else {
        return String::new();
    };
    let mut out = String::from(
        "# HELP flowgate_table_bytes Size of each flowgate table with its indexes and TOAST\n\
         # TYPE flowgate_table_bytes gauge\n",
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "flowgate_table_bytes{{table=\"{}\"}} {}",
            r.table, r.bytes
        );
    }
    out.push_str(
        "# HELP flowgate_table_rows_estimate Planner's row estimate of each flowgate table\n\
         # TYPE flowgate_table_rows_estimate gauge\n",
    );
    for r in &rows {
        let (t, n) = (&r.table, r.rows_estimate);
        let _ = writeln!(out, "flowgate_table_rows_estimate{{table=\"{t}\"}} {n}");
    }
    out
}
