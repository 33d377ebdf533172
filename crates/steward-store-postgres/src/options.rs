//! How a [`PostgresStore`](crate::PostgresStore) connects, and the schema it
//! lives in.

use std::time::Duration;

use steward_core::store::StoreError;

/// Settings for [`PostgresStore::connect`](crate::PostgresStore::connect).
///
/// ```
/// use steward_store_postgres::PostgresOptions;
/// let options = PostgresOptions { schema: "jobs_eu".into(), ..PostgresOptions::default() };
/// assert_eq!(options.pool_size, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The PostgreSQL schema that holds every object of the store (tables,
    /// indexes, the migration record). Lowercase ASCII letters, digits and
    /// `_`, not starting with a digit or `pg_`, at most 63 bytes. Default:
    /// `steward`.
    pub schema: String,
    /// Connections in the store's pool. Default: 10.
    pub pool_size: u32,
    /// How long an operation waits for a free connection (or for a new one
    /// to be established) before failing with
    /// [`StoreError::Unavailable`]. Default: 5 s.
    pub acquire_timeout: Duration,
    /// Vacuum the jobs table after this many jobs claimed through this
    /// store, at the first claim that finds every queue it asks drained
    /// (each returns fewer jobs than asked), on a connection of its own;
    /// `None` leaves vacuuming to autovacuum.
    /// Default: 10,000. Why: the claim steps over the index entries of
    /// every job claimed since the last vacuum, and autovacuum may take a
    /// minute or more to come (`docs/postgres.md`, "Vacuum after a drain").
    pub vacuum_after: Option<u64>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "steward".to_string(),
            pool_size: 10,
            acquire_timeout: Duration::from_secs(5),
            vacuum_after: Some(10_000),
        }
    }
}

/// Checks a schema name and returns it quoted for SQL.
///
/// The name is spliced into statement text (identifiers cannot be bind
/// parameters), so it is held to a strict shape *and* quoted: lowercase
/// only, so the quoted name is the one `psql` users type unquoted.
pub(crate) fn quoted_schema(schema: &str) -> Result<String, StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with("pg_")
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(format!("\"{schema}\""))
    } else {
        Err(StoreError::Invalid {
            message: format!(
                "schema name `{schema}`: use 1-63 lowercase ASCII letters, digits or `_`, \
                 not starting with a digit or `pg_`"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_lowercase_identifiers() {
        for good in ["steward", "jobs_2", "_x", &"a".repeat(63)] {
            assert_eq!(
                quoted_schema(good).expect("a valid schema name"),
                format!("\"{good}\"")
            );
        }
        for bad in [
            "",
            "Steward",
            "2jobs",
            "pg_temp",
            "a-b",
            "a\"; DROP TABLE x; --",
            "public.jobs",
            &"a".repeat(64),
        ] {
            assert!(quoted_schema(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
