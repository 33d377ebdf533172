//! The single writer task and its group commit.
//!
//! SQLite lets one connection write at a time, and each commit costs a
//! trip through the WAL (an `fsync` with `synchronous=FULL`). So one task
//! owns the only write connection of this process, and every write
//! operation is sent to it as an [`Op`] over a bounded channel. The loop:
//!
//! 1. wait for one op;
//! 2. take every other op already waiting (up to `max_batch_items` items);
//! 3. run them all in one `BEGIN IMMEDIATE` transaction — enqueues merged
//!    into multi-row inserts, finishes/heartbeats/releases merged into one
//!    statement per kind, claims last so they see this batch's new jobs;
//! 4. commit once, then answer each caller through its typed [`Reply`].
//!
//! While a commit runs, new ops queue up and form the next batch: batches
//! grow with load, and at low load a lone op is committed at once, with no
//! waiting for a batch to fill. A lone op written by a single statement
//! skips the explicit `BEGIN`/`COMMIT` (autocommit is the same transaction,
//! two driver round trips cheaper; see `Op::is_one_statement`).
//!
//! Failure isolation: inputs are validated before they are sent here, so a
//! batch holds only well-formed ops. If a statement still fails, the batch
//! is rolled back; an error about the database as a whole (busy, read-only,
//! unavailable) fails every op of the batch with it (callers may retry),
//! and any other error re-runs each op in a transaction of its own so only
//! the op that causes it fails. The task survives every error — including a
//! panic while running a batch — and logs it.

mod batch;
mod op;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt as _;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, SqliteConnection};
use steward_core::store::{StoreError, WorkSignal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{is_whole_store, map_sqlx, replicate};
use crate::{SCHEMA_VERSION, schema};
use batch::group;
pub(crate) use op::{Op, Reply};

/// The writer task's state.
pub(crate) struct Writer {
    /// The write connection; `None` after it was lost, until reconnected.
    conn: Option<SqliteConnection>,
    connect: SqliteConnectOptions,
    file: Arc<str>,
    rx: mpsc::Receiver<Op>,
    signal: Arc<WorkSignal>,
    shutdown: CancellationToken,
    max_batch_items: usize,
    /// True once the schema was seen at this binary's version; until then
    /// each batch re-checks (someone may run `migrate` meanwhile).
    schema_ok: bool,
    /// The last `now` used: the store's clock never goes back within a
    /// process, even if the system clock does.
    last_now: i64,
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        conn: SqliteConnection,
        connect: SqliteConnectOptions,
        file: Arc<str>,
        rx: mpsc::Receiver<Op>,
        signal: Arc<WorkSignal>,
        shutdown: CancellationToken,
        max_batch_items: usize,
        schema_ok: bool,
    ) -> Writer {
        Writer {
            conn: Some(conn),
            connect,
            file,
            rx,
            signal,
            shutdown,
            max_batch_items: max_batch_items.max(1),
            schema_ok,
            last_now: 0,
        }
    }

    /// Runs until the store is closed (or every handle dropped), then
    /// answers what is still queued and closes the connection.
    pub(crate) async fn run(mut self) {
        loop {
            let mut batch = Vec::new();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                op = self.rx.recv() => match op {
                    Some(op) => batch.push(op),
                    None => break,
                },
            }
            self.fill(&mut batch);
            self.run_guarded(batch).await;
        }
        self.drain().await;
    }

    /// Adds every op already waiting, up to the batch budget.
    fn fill(&mut self, batch: &mut Vec<Op>) {
        let mut weight: usize = batch.iter().map(Op::weight).sum();
        while weight < self.max_batch_items {
            match self.rx.try_recv() {
                Ok(op) => {
                    weight += op.weight();
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
    }

    /// At shutdown: refuse new ops, run the ones already queued, close the
    /// connection.
    async fn drain(&mut self) {
        self.rx.close();
        loop {
            let mut batch = Vec::new();
            self.fill(&mut batch);
            if batch.is_empty() {
                break;
            }
            self.run_guarded(batch).await;
        }
        if let Some(conn) = self.conn.take() {
            if let Err(e) = conn.close().await {
                tracing::warn!(file = &*self.file, error = %e, "closing the write connection failed");
            }
        }
        tracing::debug!(file = &*self.file, "sqlite writer stopped");
    }

    /// Runs a batch; a panic inside is logged, its callers see the store as
    /// unavailable (their reply channels are dropped), and the connection is
    /// replaced, since it may be left mid-transaction.
    async fn run_guarded(&mut self, batch: Vec<Op>) {
        let result = AssertUnwindSafe(self.run_batch(batch)).catch_unwind().await;
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!(file = &*self.file, panic = %message, "sqlite writer panicked running a batch; reconnecting");
            self.conn = None;
        }
    }

    async fn run_batch(&mut self, batch: Vec<Op>) {
        let started = Instant::now();
        let size = batch.len();
        let (migrations, mut ops): (Vec<Op>, Vec<Op>) = batch
            .into_iter()
            .partition(|op| matches!(op, Op::Migrate(_)));
        for op in migrations {
            if let Op::Migrate(reply) = op {
                reply.answer(self.migrate().await);
            }
        }
        if ops.is_empty() {
            return;
        }
        if let Err(e) = self.ready().await {
            fail_all(ops, &e);
            return;
        }
        let file = Arc::clone(&self.file);
        let Some(conn) = self.conn.as_mut() else {
            return fail_all(ops, &unavailable(&file));
        };
        match group(conn, &file, &mut self.last_now, &mut ops).await {
            Ok(wake) => {
                self.committed(&ops, wake);
                ops.into_iter().for_each(Op::send);
            }
            Err(e) if is_whole_store(&e) || ops.len() == 1 => {
                tracing::warn!(file = &*file, error = %e, ops = ops.len(), "group commit failed");
                self.after_error(&e);
                fail_all(ops, &e);
            }
            Err(e) => {
                // Some op of the batch causes an error the others may not:
                // run each alone so only the culprit fails.
                tracing::warn!(file = &*file, error = %e, ops = ops.len(), "group commit failed; retrying its operations one by one");
                for mut op in ops {
                    let Some(conn) = self.conn.as_mut() else {
                        op.fail(unavailable(&file));
                        continue;
                    };
                    match group(
                        conn,
                        &file,
                        &mut self.last_now,
                        std::slice::from_mut(&mut op),
                    )
                    .await
                    {
                        Ok(wake) => {
                            self.committed(std::slice::from_ref(&op), wake);
                            op.send();
                        }
                        Err(e) => {
                            tracing::warn!(file = &*file, error = %e, "operation failed");
                            self.after_error(&e);
                            op.fail(e);
                        }
                    }
                }
            }
        }
        tracing::trace!(file = &*file, ops = size, elapsed = ?started.elapsed(), "group commit");
    }

    /// Makes sure there is a connection and the schema is usable.
    async fn ready(&mut self) -> Result<(), StoreError> {
        if self.conn.is_none() {
            let conn = SqliteConnection::connect_with(&self.connect)
                .await
                .map_err(|e| map_sqlx(e, &self.file))?;
            tracing::info!(file = &*self.file, "sqlite writer reconnected");
            self.conn = Some(conn);
        }
        if !self.schema_ok {
            let conn = self.conn.as_mut().ok_or_else(|| unavailable(&self.file))?;
            if schema::check(conn, &self.file).await? {
                self.schema_ok = true;
            } else {
                return Err(crate::error::not_migrated(&self.file));
            }
        }
        Ok(())
    }

    async fn migrate(&mut self) -> Result<(), StoreError> {
        if self.conn.is_none() {
            self.ready().await.or_else(|e| match e {
                StoreError::NotMigrated { .. } => Ok(()),
                e => Err(e),
            })?;
        }
        let conn = self.conn.as_mut().ok_or_else(|| unavailable(&self.file))?;
        schema::migrate(conn, &self.file).await?;
        self.schema_ok = schema::recorded_version(conn, &self.file).await? == SCHEMA_VERSION;
        Ok(())
    }

    /// After `ops` committed: if they made work due now, wakes every worker
    /// waiting in `wait_for_work` and leaves one permit for a worker about
    /// to wait (it claimed just before this commit and found nothing): a
    /// spurious wake-up at worst, never a missed one. And notes when their
    /// delayed jobs, retries and snoozes come due. Noted after the commit,
    /// not when the op was sent: their `run_at` counts from this batch's
    /// clock, so a due time counted from before it would end a wait a
    /// little before the job is due, the claim would find nothing, and the
    /// worker would sleep to its poll.
    fn committed(&self, ops: &[Op], wake: bool) {
        if wake {
            self.signal.wake();
        }
        for op in ops {
            match op {
                Op::Enqueue(jobs, _) => self.signal.jobs_due(jobs),
                Op::Finish(batch, _) => self.signal.finishes_due(batch),
                _ => {}
            }
        }
    }

    /// A lost connection is replaced before the next batch.
    fn after_error(&mut self, err: &StoreError) {
        if matches!(err, StoreError::Unavailable { .. }) {
            self.conn = None;
        }
    }
}

fn unavailable(file: &str) -> StoreError {
    StoreError::Unavailable {
        message: format!("{file}: no write connection"),
    }
}

fn fail_all(ops: Vec<Op>, err: &StoreError) {
    for op in ops {
        op.fail(replicate(err));
    }
}
