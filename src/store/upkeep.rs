//! Upkeep of `stream_records` that the retention benchmark triggers and measures: fresh
//! planner statistics (`ANALYZE`), `VACUUM` (plain, or `FULL` to give the space back) and
//! the table's size on disk, indexes and TOAST included.

use super::Store;
use crate::error::StoreError;

impl Store {
    /// Refreshes the planner statistics of `stream_records`.
    pub async fn analyze_stream_records(&self) -> Result<(), StoreError> {
        sqlx::query!("ANALYZE flowgate.stream_records")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Vacuums `stream_records`: plainly (the space becomes reusable, the file keeps its
    /// size) or, with `full`, rewriting it under an exclusive lock.
    pub async fn vacuum_stream_records(&self, full: bool) -> Result<(), StoreError> {
        if full {
            sqlx::query!("VACUUM FULL flowgate.stream_records")
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query!("VACUUM flowgate.stream_records")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The size of `stream_records` in bytes, with its indexes and TOAST.
    pub async fn stream_records_bytes(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT pg_total_relation_size('flowgate.stream_records') AS "bytes!""#
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
