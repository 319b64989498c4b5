//! Retention: the statements of a sweep (`crate::lifecycle`) and of `flowgate gc --dry-run`.
//!
//! A sweep runs on a connection of its own, so everything here but [`Store::table_sizes`]
//! takes that `&mut PgConnection`. [`delete`] removes expired runs and old consumed
//! messages, [`idle`] ends idle external runs, [`plan`] counts what a sweep would remove.
//!
//! Two predicates recur; [`retention_query!`] splices each into the statements that use
//! them, so they are written once:
//!
//! - `expired`: a finished run `w` past its retention. `$1` is the shortest retention in
//!   force (it bounds the index scan), `$2` the default retention (0 = forever); a child
//!   waits for its parent to finish.
//! - `consumed`: a message `m` consumed longer ago than its run `w`'s retention (`$1`, `$2`
//!   as above).

/// A `sqlx::$kind!` statement (`record` its row type, if any) whose text is the `+`-joined
/// literals and predicate names (`expired`, `consumed`: module doc) before the first `;`.
macro_rules! retention_query {
    ($kind:ident, [$($record:path)?], $($sql:tt)*) => {
        retention_query!(@sql ($kind [$($record)?]) [] $($sql)*)
    };
    (@sql ($kind:ident [$($record:path)?]) [$($done:tt)*] ; $($arg:expr),* $(,)?) => {
        sqlx::$kind!($($record,)? $($done)* $(, $arg)*)
    };
    (@sql $head:tt [$($done:tt)*] expired $($rest:tt)*) => {
        retention_query!(@sql $head [$($done)* "w.status IN ('SUCCESS', 'ERROR', 'CANCELLED')
           AND w.retention_secs IS DISTINCT FROM 0
           AND w.updated_at < now() - make_interval(secs => $1::float8)
           AND ($2::float8 > 0 OR w.retention_secs IS NOT NULL)
           AND w.updated_at < now() - make_interval(secs => coalesce(w.retention_secs::float8, $2::float8))
           AND NOT EXISTS (SELECT 1 FROM flowgate.workflows p
                           WHERE p.id = w.parent_id AND p.status IN ('ENQUEUED', 'PENDING'))"]
            $($rest)*)
    };
    (@sql $head:tt [$($done:tt)*] consumed $($rest:tt)*) => {
        retention_query!(@sql $head [$($done)* "m.consumed_at < now() - make_interval(secs => $1::float8)
           AND w.retention_secs IS DISTINCT FROM 0
           AND ($2::float8 > 0 OR w.retention_secs IS NOT NULL)
           AND m.consumed_at < now() - make_interval(secs => coalesce(w.retention_secs::float8, $2::float8))"]
            $($rest)*)
    };
    (@sql $head:tt [$($done:tt)*] $t:tt $($rest:tt)*) => {
        retention_query!(@sql $head [$($done)* $t] $($rest)*)
    };
}

pub mod delete;
pub mod idle;
pub mod plan;

use sqlx::PgConnection;

use super::Store;
use crate::error::StoreError;

/// One flowgate table's size, from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSize {
    /// Table name (without the schema).
    pub table: String,
    /// `pg_total_relation_size`: the table with its indexes and TOAST.
    pub bytes: i64,
    /// The planner's row estimate (`reltuples`, 0 when never analyzed).
    pub rows_estimate: f64,
}

impl Store {
    /// Sizes of every flowgate table, by name, read from the catalog (no table is scanned).
    pub async fn table_sizes(&self) -> Result<Vec<TableSize>, StoreError> {
        Ok(sqlx::query_as!(
            TableSize,
            r#"SELECT c.relname::text AS "table!", pg_total_relation_size(c.oid) AS "bytes!",
                      greatest(c.reltuples, 0)::float8 AS "rows_estimate!"
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'flowgate' AND c.relkind IN ('r', 'p')
               ORDER BY c.relname"#
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Takes the session advisory lock `key` if no one holds it; true if taken.
pub async fn try_advisory_lock(conn: &mut PgConnection, key: i64) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "locked!""#, key)
            .fetch_one(conn)
            .await?,
    )
}

/// Takes the session advisory lock `key`, waiting for whoever holds it.
pub async fn advisory_lock(conn: &mut PgConnection, key: i64) -> Result<(), StoreError> {
    sqlx::query!("SELECT pg_advisory_lock($1)", key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Releases the session advisory lock `key`; false if this session did not hold it.
pub async fn advisory_unlock(conn: &mut PgConnection, key: i64) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT pg_advisory_unlock($1) AS "released!""#, key)
            .fetch_one(conn)
            .await?,
    )
}

/// Makes the session give way to live traffic: a lock not granted within 2 s fails the
/// statement instead of waiting on.
pub async fn set_short_lock_timeout(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query!("SET lock_timeout = '2s'")
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the executors whose last heartbeat is older than `secs`; returns how many.
pub async fn prune_executors(conn: &mut PgConnection, secs: f64) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        "DELETE FROM flowgate.executors WHERE heartbeat_at < now() - make_interval(secs => $1)",
        secs
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The shortest retention a run sets for itself (above 0 = forever), if any does.
pub async fn min_own_retention(conn: &mut PgConnection) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT min(retention_secs) FROM flowgate.workflows WHERE retention_secs > 0"
    )
    .fetch_one(conn)
    .await?)
}

/// Up to `limit` expired runs (module doc: `floor` is `$1`, `default` `$2`), the longest
/// finished first.
pub async fn expired_runs(
    conn: &mut PgConnection,
    floor: f64,
    default: f64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(retention_query!(
        query_scalar,
        [],
        "SELECT w.id FROM flowgate.workflows w WHERE " + expired + " ORDER BY w.updated_at LIMIT $3";
        floor,
        default,
        limit
    )
    .fetch_all(conn)
    .await?)
}
