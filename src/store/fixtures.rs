//! Rows the benchmarks write straight in SQL rather than through the API: expired runs full
//! of stream records for the retention sweep to remove, the external runs the pgbench
//! scripts write to, and stream records appended through `flowgate.write_stream` (the SQL
//! producer path, which notifies in its transaction).

use serde_json::Value;

use super::Store;
use crate::error::StoreError;

impl Store {
    /// Inserts, in one transaction, `runs` finished runs (`old-1` … `old-<runs>`, workflow
    /// `bench`) last updated two days ago, each with a closed stream `output` of `per_run`
    /// records of about 100 bytes.
    pub async fn seed_expired_runs(&self, runs: i64, per_run: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "INSERT INTO flowgate.workflows (id, workflow, status, external, updated_at)
             SELECT 'old-' || i, 'bench', 'SUCCESS', true, now() - interval '2 days'
             FROM generate_series(1, $1::int8) i",
            runs
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO flowgate.streams (workflow_id, key, next_offset, closed)
             SELECT 'old-' || i, 'output', $2::int8, true FROM generate_series(1, $1::int8) i",
            runs,
            per_run
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"INSERT INTO flowgate.stream_records (workflow_id, key, "offset", payload)
               SELECT 'old-' || i, 'output', o,
                      convert_to('{"token":"' || repeat('x', 80) || '","i":' || o || '}', 'UTF8')
               FROM generate_series(1, $1::int8) i, generate_series(0, $2::int8 - 1) o"#,
            runs,
            per_run
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates external run `id` of workflow `bench` unless it exists; true if created now.
    pub async fn ensure_bench_run(&self, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT flowgate.ensure_run($1::text, 'bench') AS "created!""#,
            id
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Appends `record` to stream `s` of run `run` with `flowgate.write_stream`, which
    /// notifies listeners in the same transaction; returns the record's offset.
    pub async fn write_stream_sql(&self, run: &str, record: &Value) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT flowgate.write_stream($1::text, 's', $2::jsonb) AS "first!""#,
            run,
            record
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
