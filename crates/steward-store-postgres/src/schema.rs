//! Embedded migrations and the schema version check.
//!
//! Migrations are SQL files compiled into the binary, written against a
//! `{schema}` placeholder. [`migrate`] applies the missing ones in **one
//! transaction** that first takes a transaction-level advisory lock keyed by
//! the schema name: several nodes starting at once queue up on the lock, the
//! first migrates, the others then find the version recorded and do
//! nothing. PostgreSQL's DDL is transactional, so a failure leaves the
//! schema exactly as it was, and the lock goes with the transaction (no
//! lock left behind by a crashed node).

use sqlx::{Acquire as _, Executor as _, PgConnection};
use steward_core::store::StoreError;
use steward_core::store::migration::{self, Migration};

use crate::error::map_sqlx;
use crate::sql::render;

/// Every migration this binary knows, oldest first.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "jobs",
        sql: include_str!("../migrations/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "leaders",
        sql: include_str!("../migrations/0002_leaders.sql"),
    },
    Migration {
        version: 3,
        name: "enqueue_function",
        sql: include_str!("../migrations/0003_enqueue_function.sql"),
    },
    Migration {
        version: 4,
        name: "poison_times_and_enqueue_rights",
        sql: include_str!("../migrations/0004_poison_times_and_enqueue_rights.sql"),
    },
    Migration {
        version: 5,
        name: "suspects_index",
        sql: include_str!("../migrations/0005_suspects_index.sql"),
    },
    Migration {
        version: 6,
        name: "enqueue_announces_due_times",
        sql: include_str!("../migrations/0006_enqueue_announces_due_times.sql"),
    },
    Migration {
        version: 7,
        name: "schedules",
        sql: include_str!("../migrations/0007_schedules.sql"),
    },
    Migration {
        version: 8,
        name: "payload_version",
        sql: include_str!("../migrations/0008_payload_version.sql"),
    },
    Migration {
        version: 9,
        name: "history",
        sql: include_str!("../migrations/0009_history.sql"),
    },
    Migration {
        version: 10,
        name: "job_query_indexes",
        sql: include_str!("../migrations/0010_job_query_indexes.sql"),
    },
    Migration {
        version: 11,
        name: "queue_settings",
        sql: include_str!("../migrations/0011_queue_settings.sql"),
    },
    Migration {
        version: 12,
        name: "nodes",
        sql: include_str!("../migrations/0012_nodes.sql"),
    },
    Migration {
        version: 13,
        name: "counts_statistics",
        sql: include_str!("../migrations/0013_counts_statistics.sql"),
    },
];

/// The schema version this binary writes and expects: the newest embedded
/// migration. A schema recording a newer version was migrated by a newer
/// binary and is refused with [`StoreError::SchemaTooNew`].
///
/// ```
/// assert!(steward_store_postgres::SCHEMA_VERSION >= 1);
/// ```
pub const SCHEMA_VERSION: i64 = 13;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version    bigint      PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The version recorded in the schema: 0 if it was never migrated (no
/// schema, or no version table).
pub(crate) async fn recorded_version(
    conn: &mut PgConnection,
    quoted: &str,
) -> Result<i64, sqlx::Error> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("{quoted}.schema_migrations"))
        .fetch_one(&mut *conn)
        .await?;
    if table.is_none() {
        return Ok(0);
    }
    sqlx::query_scalar(&render(
        "SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations",
        quoted,
    ))
    .fetch_one(&mut *conn)
    .await
}

/// Refuses a schema migrated by a newer binary.
pub(crate) fn check_not_newer(found: i64) -> Result<(), StoreError> {
    migration::check_not_newer(found, SCHEMA_VERSION)
}

/// Applies the missing migrations to `schema` (quoted as `quoted`) under
/// the migration lock; see the module docs.
pub(crate) async fn migrate(
    conn: &mut PgConnection,
    schema: &str,
    quoted: &str,
) -> Result<(), StoreError> {
    let err = |e| map_sqlx(e, schema);
    let mut tx = conn.begin().await.map_err(err)?;
    // One lock per schema: stores in different schemas migrate in parallel.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("steward migrate {schema}"))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    // `IF NOT EXISTS` on a schema that exists (every start of every node)
    // makes the server send a NOTICE, which sqlx logs at INFO: noise that
    // looks like a problem. Warnings and errors still come through.
    tx.execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(err)?;
    tx.execute(&*render("CREATE SCHEMA IF NOT EXISTS {schema}", quoted))
        .await
        .map_err(err)?;
    tx.execute(&*render(CREATE_VERSION_TABLE, quoted))
        .await
        .map_err(err)?;
    let found = recorded_version(&mut tx, quoted).await.map_err(err)?;
    check_not_newer(found)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        // A migration holds several statements: executed as plain text (the
        // simple query protocol), they all run, in order.
        tx.execute(&*render(migration.sql, quoted))
            .await
            .map_err(err)?;
        sqlx::query(&render(
            "INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
            quoted,
        ))
        .bind(migration.version)
        .bind(migration.name)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tracing::info!(
            schema,
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    tx.commit().await.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_is_the_newest_migration() {
        assert_eq!(migration::list_error(MIGRATIONS, SCHEMA_VERSION), None);
    }

    #[test]
    fn the_enqueue_function_notifies_on_the_stores_channel() {
        // The SQL function cuts the schema name as `notify::channel` does,
        // so its NOTIFY reaches the store's listener whatever the name.
        let versions: Vec<&Migration> = MIGRATIONS
            .iter()
            .filter(|m| m.sql.contains("FUNCTION {schema}.enqueue("))
            .collect();
        assert_eq!(
            versions.len(),
            4,
            "0003 creates the function, 0004 and 0006 replace it, 0008 makes it anew"
        );
        for m in versions {
            assert!(
                m.sql
                    .contains(r#"left(trim(both '"' from '{schema}'), 58) || '_jobs'"#),
                "migration {}",
                m.name
            );
        }
        let long = "a".repeat(63);
        assert_eq!(
            crate::notify::channel(&long),
            format!("{}_jobs", &long[..58])
        );
    }

    #[test]
    fn migrations_name_no_object_outside_the_placeholder_schema() {
        // Every CREATE names its object through `{schema}`, so a store
        // never writes outside the schema it was given.
        for m in MIGRATIONS {
            for line in m.sql.lines().map(str::trim) {
                if line.starts_with("CREATE") {
                    assert!(line.contains("{schema}."), "unqualified: {line}");
                }
            }
        }
    }
}
