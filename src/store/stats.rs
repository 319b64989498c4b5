//! Database statistics the benchmarks read: transactions committed (`pg_stat_database`, in
//! this database or the whole server), the backends serving this database
//! (`pg_stat_activity`), and how many runs matching an id pattern reached a status.
//!
//! Postgres flushes its statistics lazily, so callers let them settle before reading.

use super::{RunStatus, Store};
use crate::error::StoreError;

impl Store {
    /// Transactions committed in the current database so far.
    pub async fn xact_commits(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT xact_commit AS "xact_commit!" FROM pg_stat_database
               WHERE datname = current_database()"#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Transactions committed in every database of the server so far.
    pub async fn server_xact_commits(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT sum(xact_commit)::bigint AS "xact_commit!" FROM pg_stat_database"#
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Process ids of the backends connected to the current database.
    pub async fn backend_pids(&self) -> Result<Vec<i32>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT pid AS "pid!" FROM pg_stat_activity WHERE datname = current_database()"#
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many runs whose id matches the `LIKE` pattern `pattern` have status `status`.
    pub async fn count_runs_like(
        &self,
        pattern: &str,
        status: RunStatus,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM flowgate.workflows
               WHERE id LIKE $1 AND status = $2"#,
            pattern,
            status as RunStatus
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
