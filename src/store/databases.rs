//! Whole databases: creating and dropping the scratch databases the benchmarks run in. A
//! database name is an identifier, which cannot be a bind parameter, so these statements
//! are built at run time around the name, double-quoted.

use super::Store;
use crate::error::StoreError;

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Store {
    /// Creates database `name` on this server.
    pub async fn create_database(&self, name: &str) -> Result<(), StoreError> {
        // Built at run time: the database name is an identifier, not a value.
        sqlx::query(&format!("CREATE DATABASE {}", quoted(name)))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops database `name` if it exists, ending the sessions still connected to it.
    pub async fn drop_database(&self, name: &str) -> Result<(), StoreError> {
        // Built at run time: the database name is an identifier, not a value.
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quoted(name)
        ))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn names_are_quoted_identifiers() {
        assert_eq!(
            quoted("flowgate_bench_0a1b2c3d"),
            "\"flowgate_bench_0a1b2c3d\""
        );
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
