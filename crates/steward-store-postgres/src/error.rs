//! Turning sqlx/PostgreSQL errors into the engine's [`StoreError`].
//!
//! The store has no error type of its own: everything crosses the storage
//! boundary as a `StoreError`, whose variants tell the engine whether to
//! back off (`Busy`, `Unavailable`) or give up. Messages name the schema,
//! so a log line says which store failed.

use steward_core::store::StoreError;

/// Maps a driver error from the store in `schema` to a typed store error,
/// by SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html).
pub(crate) fn map_sqlx(err: sqlx::Error, schema: &str) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = format!(
                "postgres schema `{schema}`: {} (SQLSTATE {code})",
                db.message()
            );
            match code.as_str() {
                // Connection exceptions; the server shutting down or not yet
                // accepting; out of connections, memory or disk.
                c if c.starts_with("08") || c.starts_with("53") => {
                    StoreError::Unavailable { message }
                }
                "57P01" | "57P02" | "57P03" => StoreError::Unavailable { message },
                // Serialization failure, deadlock, lock_timeout, statement
                // timeout: the same operation may well succeed if tried again.
                "40001" | "40P01" | "55P03" | "57014" => StoreError::Busy { message },
                "25006" => StoreError::ReadOnly { message },
                // No such table / schema: a store that was never migrated.
                "42P01" | "3F000" => StoreError::NotMigrated {
                    store: format!("PostgreSQL schema `{schema}`"),
                },
                // Data exceptions: a value PostgreSQL cannot hold (a NUL in
                // text or jsonb, a number out of range) is the caller's input.
                c if c.starts_with("22") => StoreError::Invalid { message },
                _ => StoreError::Database {
                    source: Box::new(sqlx::Error::Database(db)),
                },
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable {
            message: format!("postgres schema `{schema}`: {e}"),
        },
        sqlx::Error::Tls(e) => StoreError::Unavailable {
            message: format!("postgres schema `{schema}`: TLS: {e}"),
        },
        // With a healthy server this means the pool is exhausted; with a
        // dead one, that no connection could be made in time. Either way,
        // later may work.
        sqlx::Error::PoolTimedOut => StoreError::Unavailable {
            message: format!(
                "postgres schema `{schema}`: no connection within the acquire timeout \
                 (server unreachable, or every pooled connection busy)"
            ),
        },
        sqlx::Error::PoolClosed => StoreError::Unavailable {
            message: format!("postgres schema `{schema}`: the store is closed"),
        },
        sqlx::Error::Protocol(e) => StoreError::Unavailable {
            message: format!("postgres schema `{schema}`: protocol error: {e}"),
        },
        other => StoreError::Database {
            source: Box::new(other),
        },
    }
}

/// An [`StoreError::Invalid`] with `message`.
pub(crate) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

/// A decoding error for a value the schema should never hold.
pub(crate) fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}
