//! What can go wrong talking to a store.

use super::JobId;
use crate::BoxError;

/// A store's error. [`StoreError::is_transient`] tells the engine whether
/// to back off and try again (a locked database, a dropped connection)
/// rather than give up.
///
/// ```
/// use steward_core::store::StoreError;
/// let e = StoreError::Busy { message: "database is locked".into() };
/// assert!(e.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database is locked or busy; try again later.
    #[error("store busy: {message}")]
    Busy {
        /// What the database said.
        message: String,
    },
    /// The connection failed or was dropped; try again later.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// The database cannot be written (read-only file, permissions).
    #[error("store is read-only: {message}")]
    ReadOnly {
        /// What the database said.
        message: String,
    },
    /// The database was migrated by a newer binary than this one.
    #[error(
        "the store's schema is version {found}, newer than this binary supports ({supported}); upgrade steward"
    )]
    SchemaTooNew {
        /// The schema version found.
        found: i64,
        /// The newest this binary knows.
        supported: i64,
    },
    /// The schema has not been created; run migrations.
    #[error(
        "{store} has no Steward tables yet: call `migrate()` on the store at start-up \
         (`store.migrate().await?`), or run `steward migrate --store URL`"
    )]
    NotMigrated {
        /// Which store: the PostgreSQL schema or the SQLite file.
        store: String,
    },
    /// A fenced write about an attempt whose lease was lost.
    #[error("lease lost for job {id}: it was rescued and belongs to a newer attempt")]
    LeaseLost {
        /// The job.
        id: JobId,
    },
    /// An input the store cannot accept (bad payload JSON, out-of-range value).
    #[error("invalid input: {message}")]
    Invalid {
        /// What was wrong.
        message: String,
    },
    /// Any other database error.
    #[error("store error: {source}")]
    Database {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// True if trying again later may succeed.
    ///
    /// ```
    /// use steward_core::store::StoreError;
    /// assert!(!StoreError::NotMigrated { store: "schema `app`".into() }.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Busy { .. } | StoreError::Unavailable { .. }
        )
    }
}
