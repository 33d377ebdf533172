//! Enqueueing and completing jobs inside the caller's own transaction.
//!
//! The transactional outbox: a business row and the job that follows it up
//! commit together or not at all. These functions write on the caller's
//! connection — `&mut tx` of a `sqlx::Transaction<'_, Postgres>` — and never
//! commit or roll back the caller's transaction. Their own statements run
//! inside a savepoint (sqlx's nested transaction), so a failure undoes only
//! their part and leaves the caller's transaction usable (in PostgreSQL a
//! failed statement would otherwise abort the whole transaction).

use sqlx::{Acquire as _, PgConnection};
use steward_core::store::{Enqueued, Finish, FinishOutcome, Lease, NewJob, StoreError};

use crate::PostgresStore;
use crate::notify;
use crate::ops::{enqueue, lease};

/// Enqueues jobs inside the caller's transaction, with the same validation
/// and SQL as [`Store::enqueue`](steward_core::store::Store::enqueue), in
/// `store`'s schema. The jobs (and their unique keys) exist only if the
/// caller commits; a concurrent enqueue of the same unique key waits for
/// the caller's commit or rollback. Jobs due now also queue a `NOTIFY` on
/// the store's channel in the caller's transaction: PostgreSQL delivers it
/// at the commit, waking the waiting workers of every process (nothing is
/// sent on a rollback). Calling [`PostgresStore::notify_enqueued`] after
/// the commit is optional: it wakes this process's workers without waiting
/// for the notification's round trip.
///
/// Begin the transaction with sqlx (`pool.begin()`), so the driver knows it
/// is open and wraps this in a savepoint. On a connection outside any
/// transaction, the jobs commit by themselves (atomically for the batch).
///
/// ```no_run
/// # async fn demo(store: steward_store_postgres::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
/// use steward_core::store::NewJob;
/// let mut tx = store.pool().begin().await?;
/// sqlx::query("INSERT INTO orders (id) VALUES ($1)").bind(42_i64).execute(&mut *tx).await?;
/// let ids = steward_store_postgres::enqueue_in(
///     &mut tx,
///     &store,
///     vec![NewJob::new("ship", r#"{"order":42}"#)],
/// )
/// .await?;
/// tx.commit().await?; // the order and its job, together
/// store.notify_enqueued();
/// # Ok(())
/// # }
/// ```
pub async fn enqueue_in(
    conn: &mut PgConnection,
    store: &PostgresStore,
    jobs: Vec<NewJob>,
) -> Result<Vec<Enqueued>, StoreError> {
    enqueue::validate(&jobs)?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut sp = conn.begin().await.map_err(|e| store.err(e))?;
    let inserted = enqueue::insert(&mut sp, store.sql(), &jobs, enqueue::Bulk::Insert)
        .await
        .map_err(|e| store.err(e))?;
    // Queued in the caller's transaction: PostgreSQL delivers it when the
    // caller commits, and drops it if they roll back.
    notify::send(&mut sp, store.channel(), &inserted.due_queues)
        .await
        .map_err(|e| store.err(e))?;
    if let Some(delay) = steward_core::store::earliest_job_due(&jobs) {
        notify::send_due(&mut sp, store.channel(), delay)
            .await
            .map_err(|e| store.err(e))?;
    }
    sp.commit().await.map_err(|e| store.err(e))?;
    Ok(inserted.ids)
}

/// Completes a running attempt inside the caller's transaction, fenced by
/// its lease like [`Store::finish`](steward_core::store::Store::finish):
/// [`StoreError::LeaseLost`] if the attempt no longer holds the job
/// (rescued, released, or already finished). Commits with the caller's
/// business writes, or not at all.
///
/// While the caller's transaction is open it holds the job's row lock, so
/// a rescue of the same job waits for it; if the caller rolls back, the job
/// is still running under its lease, as if nothing had happened.
///
/// ```no_run
/// # async fn demo(store: steward_store_postgres::PostgresStore, lease: steward_core::store::Lease) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = store.pool().begin().await?;
/// sqlx::query("UPDATE orders SET shipped = true WHERE id = $1").bind(42_i64).execute(&mut *tx).await?;
/// steward_store_postgres::complete_in(&mut tx, &store, lease).await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
pub async fn complete_in(
    conn: &mut PgConnection,
    store: &PostgresStore,
    lease: Lease,
) -> Result<(), StoreError> {
    let item = Finish {
        lease,
        outcome: FinishOutcome::Completed,
    };
    let mut sp = conn.begin().await.map_err(|e| store.err(e))?;
    let (applied, _) = lease::finish(&mut sp, store.sql(), std::slice::from_ref(&item))
        .await
        .map_err(|e| store.err(e))?;
    sp.commit().await.map_err(|e| store.err(e))?;
    if applied.first().copied().unwrap_or(false) {
        Ok(())
    } else {
        Err(StoreError::LeaseLost { id: lease.id })
    }
}
