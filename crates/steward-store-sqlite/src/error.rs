//! Turning sqlx/SQLite errors into the engine's [`StoreError`].
//!
//! The store has no error type of its own: everything crosses the storage
//! boundary as a `StoreError`, whose variants tell the engine whether to
//! back off (`Busy`, `Unavailable`) or give up. Messages name the database
//! file, so a log line says which store failed.

use steward_core::store::StoreError;

// Primary SQLite result codes (https://www.sqlite.org/rescode.html); the
// driver reports extended codes, whose low byte is the primary one.
const SQLITE_ERROR: i64 = 1;
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;

/// Maps a driver error about the database `file` to a typed store error.
pub(crate) fn map_sqlx(err: sqlx::Error, file: &str) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .unwrap_or(SQLITE_ERROR);
            let message = format!("{file}: {}", db.message());
            match code & 0xff {
                SQLITE_BUSY | SQLITE_LOCKED => StoreError::Busy { message },
                SQLITE_READONLY => StoreError::ReadOnly { message },
                SQLITE_IOERR | SQLITE_CANTOPEN | SQLITE_FULL => StoreError::Unavailable { message },
                // The schema is missing: a store opened but never migrated
                // (or a table dropped behind our back).
                SQLITE_ERROR if db.message().starts_with("no such table: steward_") => {
                    not_migrated(file)
                }
                _ => StoreError::Database {
                    source: Box::new(sqlx::Error::Database(db)),
                },
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable {
            message: format!("{file}: {e}"),
        },
        sqlx::Error::PoolTimedOut => StoreError::Busy {
            message: format!("{file}: no free connection in the read pool"),
        },
        sqlx::Error::PoolClosed => StoreError::Unavailable {
            message: format!("{file}: the store is closed"),
        },
        sqlx::Error::WorkerCrashed => StoreError::Unavailable {
            message: format!("{file}: the SQLite connection's worker thread stopped"),
        },
        other => StoreError::Database {
            source: Box::new(other),
        },
    }
}

/// A copy of `err` for every operation of a failed group commit
/// (`StoreError` is not `Clone`: its `Database` variant owns the driver's
/// error, which is kept as text in the copies).
pub(crate) fn replicate(err: &StoreError) -> StoreError {
    match err {
        StoreError::Busy { message } => StoreError::Busy {
            message: message.clone(),
        },
        StoreError::Unavailable { message } => StoreError::Unavailable {
            message: message.clone(),
        },
        StoreError::ReadOnly { message } => StoreError::ReadOnly {
            message: message.clone(),
        },
        StoreError::SchemaTooNew { found, supported } => StoreError::SchemaTooNew {
            found: *found,
            supported: *supported,
        },
        StoreError::NotMigrated { store } => StoreError::NotMigrated {
            store: store.clone(),
        },
        StoreError::LeaseLost { id } => StoreError::LeaseLost { id: *id },
        StoreError::Invalid { message } => StoreError::Invalid {
            message: message.clone(),
        },
        other => StoreError::Database {
            source: other.to_string().into(),
        },
    }
}

/// True for errors about the database as a whole rather than one
/// operation: every operation of the batch would fail the same way, so
/// there is no point retrying them one by one.
pub(crate) fn is_whole_store(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Busy { .. }
            | StoreError::Unavailable { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::NotMigrated { .. }
    )
}

/// An [`StoreError::Invalid`] with `message`.
pub(crate) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

/// The error for a database file without Steward's tables.
pub(crate) fn not_migrated(file: &str) -> StoreError {
    StoreError::NotMigrated {
        store: format!("SQLite database {file}"),
    }
}
