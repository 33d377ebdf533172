//! Embedded migrations and the schema version check.
//!
//! Migrations are SQL files compiled into the binary, applied in order, each
//! in its own `BEGIN IMMEDIATE` transaction together with the row that
//! records it in `steward_schema`, so a crash mid-way leaves the database at
//! a recorded version, and two processes migrating at once apply each step
//! once (the second sees the first's row and skips it).

use sqlx::{Executor as _, SqliteConnection};
use steward_core::store::StoreError;
use steward_core::store::migration::{self, Migration};

use crate::error::map_sqlx;
use crate::sql::{self, now_ms};

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
        name: "state tests without IN lists",
        sql: include_str!("../migrations/0003_state_tests_without_in_lists.sql"),
    },
    Migration {
        version: 4,
        name: "suspects index",
        sql: include_str!("../migrations/0004_suspects_index.sql"),
    },
    Migration {
        version: 5,
        name: "claim indexes split",
        sql: include_str!("../migrations/0005_claim_indexes_split.sql"),
    },
    Migration {
        version: 6,
        name: "schedules",
        sql: include_str!("../migrations/0006_schedules.sql"),
    },
    Migration {
        version: 7,
        name: "payload version",
        sql: include_str!("../migrations/0007_payload_version.sql"),
    },
    Migration {
        version: 8,
        name: "history",
        sql: include_str!("../migrations/0008_history.sql"),
    },
    Migration {
        version: 9,
        name: "job query indexes",
        sql: include_str!("../migrations/0009_job_query_indexes.sql"),
    },
    Migration {
        version: 10,
        name: "queue settings",
        sql: include_str!("../migrations/0010_queue_settings.sql"),
    },
    Migration {
        version: 11,
        name: "nodes",
        sql: include_str!("../migrations/0011_nodes.sql"),
    },
];

/// The schema version this binary writes and expects: the newest embedded
/// migration. A database recording a newer version was migrated by a newer
/// binary and is refused with [`StoreError::SchemaTooNew`].
///
/// ```
/// assert!(steward_store_sqlite::SCHEMA_VERSION >= 1);
/// ```
pub const SCHEMA_VERSION: i64 = 11;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS steward_schema (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT";

/// The version recorded in the database: 0 if it was never migrated.
pub(crate) async fn recorded_version(
    conn: &mut SqliteConnection,
    file: &str,
) -> Result<i64, StoreError> {
    let has_table: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'steward_schema'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| map_sqlx(e, file))?;
    if has_table == 0 {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM steward_schema")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, file))
}

/// Checks that the database is usable by this binary as it is:
/// `Ok(true)` if fully migrated, `Ok(false)` if migrations are missing,
/// [`StoreError::SchemaTooNew`] if a newer binary migrated it.
pub(crate) async fn check(conn: &mut SqliteConnection, file: &str) -> Result<bool, StoreError> {
    let found = recorded_version(conn, file).await?;
    migration::check_not_newer(found, SCHEMA_VERSION)?;
    Ok(found == SCHEMA_VERSION)
}

/// Applies the missing migrations, each in its own transaction.
pub(crate) async fn migrate(conn: &mut SqliteConnection, file: &str) -> Result<(), StoreError> {
    for migration in MIGRATIONS {
        sql::begin_immediate(conn, file).await?;
        match apply(conn, file, migration).await {
            Ok(()) => sql::commit(conn, file).await?,
            Err(e) => {
                sql::rollback(conn, file).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Applies one migration inside the open transaction, unless the database
/// already has it.
async fn apply(
    conn: &mut SqliteConnection,
    file: &str,
    migration: &Migration,
) -> Result<(), StoreError> {
    sqlx::query(CREATE_VERSION_TABLE)
        .execute(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, file))?;
    let found = recorded_version(conn, file).await?;
    migration::check_not_newer(found, SCHEMA_VERSION)?;
    if found >= migration.version {
        return Ok(());
    }
    // A migration holds several statements; executing the text as is runs
    // them all, in order (as `sqlx::raw_sql` would, but with a `Send` future).
    conn.execute(migration.sql)
        .await
        .map_err(|e| map_sqlx(e, file))?;
    sqlx::query("INSERT INTO steward_schema (version, name, applied_at) VALUES (?1, ?2, ?3)")
        .bind(migration.version)
        .bind(migration.name)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, file))?;
    tracing::info!(
        file,
        version = migration.version,
        name = migration.name,
        "applied migration"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_is_the_newest_migration() {
        assert_eq!(migration::list_error(MIGRATIONS, SCHEMA_VERSION), None);
    }
}
