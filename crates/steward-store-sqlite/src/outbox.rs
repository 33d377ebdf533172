//! Enqueueing and completing jobs inside the caller's own transaction.
//!
//! The transactional outbox: a business row and the job that follows it up
//! commit together or not at all. These functions write on the caller's
//! connection — typically `&mut *tx` of a `sqlx::Transaction<'_, Sqlite>`
//! from [`SqliteStore::pool`](crate::SqliteStore::pool) — and never commit
//! or roll back the caller's transaction. Their own statements are wrapped
//! in a savepoint, so a failure undoes only their part and leaves the
//! caller's transaction usable.

use sqlx::{Executor as _, SqliteConnection};
use steward_core::store::{Enqueued, Finish, FinishOutcome, Lease, NewJob, StoreError};

use crate::error::map_sqlx;
use crate::ops::{enqueue, lease};
use crate::sql::now_ms;

/// How errors on the caller's connection name it (its file is not known).
const CALLER: &str = "caller's connection";

/// Enqueues jobs inside the caller's transaction, with the same validation
/// and SQL as [`Store::enqueue`](steward_core::store::Store::enqueue). The
/// jobs (and their unique keys) exist only if the caller commits. After the
/// commit, call [`SqliteStore::notify_enqueued`](crate::SqliteStore::notify_enqueued)
/// to wake this process's workers at once.
///
/// On a connection outside a transaction, the insert commits by itself
/// (atomically for the batch).
///
/// ```
/// # async fn demo(store: steward_store_sqlite::SqliteStore) -> Result<(), Box<dyn std::error::Error>> {
/// use steward_core::store::NewJob;
/// let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
/// sqlx::query("INSERT INTO orders (id) VALUES (?1)").bind(42).execute(&mut *tx).await?;
/// let ids = steward_store_sqlite::enqueue_in(&mut tx, vec![NewJob::new("ship", r#"{"order":42}"#)]).await?;
/// tx.commit().await?; // the order and its job, together
/// store.notify_enqueued();
/// # Ok(())
/// # }
/// ```
pub async fn enqueue_in(
    conn: &mut SqliteConnection,
    jobs: Vec<NewJob>,
) -> Result<Vec<Enqueued>, StoreError> {
    enqueue::validate(&jobs)?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&NewJob> = jobs.iter().collect();
    savepoint(conn, async |conn: &mut SqliteConnection| {
        enqueue::insert(conn, now_ms(), &refs)
            .await
            .map(|(ids, _)| ids)
    })
    .await
}

/// Completes a running attempt inside the caller's transaction, fenced by
/// its lease like [`Store::finish`](steward_core::store::Store::finish):
/// [`StoreError::LeaseLost`] if the attempt no longer holds the job
/// (rescued, released, or already finished). Commits with the caller's
/// business writes, or not at all.
///
/// ```
/// # async fn demo(store: steward_store_sqlite::SqliteStore, lease: steward_core::store::Lease) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
/// sqlx::query("UPDATE orders SET shipped = 1 WHERE id = ?1").bind(42).execute(&mut *tx).await?;
/// steward_store_sqlite::complete_in(&mut tx, lease).await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
pub async fn complete_in(conn: &mut SqliteConnection, lease: Lease) -> Result<(), StoreError> {
    let item = Finish {
        lease,
        outcome: FinishOutcome::Completed,
    };
    let applied = savepoint(conn, async |conn: &mut SqliteConnection| {
        lease::finish(conn, now_ms(), &[&item])
            .await
            .map(|(applied, _)| applied)
    })
    .await?;
    if applied.first().copied().unwrap_or(false) {
        Ok(())
    } else {
        Err(StoreError::LeaseLost { id: lease.id })
    }
}

/// Runs `f` inside `SAVEPOINT steward`, released on success and rolled
/// back to (then released) on failure.
async fn savepoint<T>(
    conn: &mut SqliteConnection,
    f: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, sqlx::Error>,
) -> Result<T, StoreError> {
    sqlx::query("SAVEPOINT steward")
        .execute(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, CALLER))?;
    match f(&mut *conn).await {
        Ok(value) => {
            sqlx::query("RELEASE steward")
                .execute(&mut *conn)
                .await
                .map_err(|e| map_sqlx(e, CALLER))?;
            Ok(value)
        }
        Err(e) => {
            // Undo our part only; the caller decides about their transaction.
            if let Err(undo) = conn.execute("ROLLBACK TO steward; RELEASE steward").await {
                tracing::warn!(error = %undo, "undoing a failed enqueue_in/complete_in failed");
            }
            Err(map_sqlx(e, CALLER))
        }
    }
}
