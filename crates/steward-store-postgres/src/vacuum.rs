//! Vacuuming the jobs table when a burst of work has drained.
//!
//! Why: a claim moves a job out of the `jobs_claim` index, but PostgreSQL
//! leaves the old index entry in place, marked dead, until `VACUUM`
//! removes it. Claims take the oldest jobs first, so those dead entries sit
//! exactly where every later claim starts its scan, and each claim steps
//! over all of them. Measured with `EXPLAIN (ANALYZE, BUFFERS)` after
//! 100,000 jobs had been claimed: a claim of one job read 606 index pages
//! and took 0.8–1.0 ms instead of ~0.15 ms (`docs/postgres.md`, "Vacuum
//! after a drain"). While jobs pour in, claims are large and the walk is
//! shared by a batch; when the burst is over, each new job is claimed alone
//! and pays it whole — and autovacuum visits a database at most once per
//! `autovacuum_naptime` (a minute by default) and waits for 20 % of the
//! table to be dead.
//!
//! So each store counts the jobs it has claimed, and once a claim finds
//! every queue it asked drained (each came back with fewer jobs than
//! asked: what follows are lone claims) after at least `vacuum_after` of
//! them, it runs
//! `VACUUM (INDEX_CLEANUP ON, TRUNCATE false, SKIP_LOCKED)` on the jobs
//! table in the background: one at a time per store, skipped while another
//! session vacuums the table. `INDEX_CLEANUP ON` because the point is the
//! index: left to `AUTO`, PostgreSQL may skip index cleanup when few heap
//! pages hold dead rows. `TRUNCATE false` because giving empty pages at the
//! table's end back to the filesystem takes an exclusive lock, which would
//! stop every claim and completion while it is held. The vacuum runs on a
//! connection of its own, not one of the pool's, so claims and completions
//! never wait for one; `close` stops the task, and a `VACUUM` the server is
//! already running finishes there.
//!
//! Each queue, not the claim as a whole: a worker claims all its queues in
//! one request, so while one queue is busy and another idle every claim is
//! short, and the vacuum (a full scan of every index) would run every
//! `vacuum_after` jobs in the middle of the burst. And at the end of the
//! burst, not at the first empty claim (which comes only after the next
//! job): the vacuum then overlaps the burst's last jobs, not the first lone
//! claims, whose latency it would add to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::task::JoinHandle;

/// The statement, `{schema}` rendered.
pub(crate) const VACUUM: &str =
    "VACUUM (INDEX_CLEANUP ON, TRUNCATE false, SKIP_LOCKED) {schema}.jobs";

/// How the vacuum's connection shows in `pg_stat_activity`.
pub(crate) const APPLICATION_NAME: &str = "steward vacuum";

/// Connects, vacuums, disconnects.
async fn vacuum(connect: &PgConnectOptions, statement: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(connect).await?;
    // A `&str` without arguments goes as a simple query, a statement of its
    // own: `VACUUM` refuses to run inside a transaction block.
    conn.execute(statement).await?;
    conn.close().await
}

/// The store's count of claimed jobs and its vacuum in flight. Dropping it
/// stops the task.
#[derive(Debug)]
pub(crate) struct DrainVacuum {
    after: Option<u64>,
    claimed: AtomicU64,
    /// How the vacuum connects (not through the pool), what it runs, and
    /// the schema its log lines name.
    connect: PgConnectOptions,
    statement: String,
    schema: String,
    /// The vacuum in flight (or the last one, finished): one at a time.
    task: Mutex<Option<JoinHandle<()>>>,
}

impl DrainVacuum {
    /// Vacuums with `statement` after `after` claimed jobs and a drained
    /// claim (never if `None`), connecting with `connect`.
    pub(crate) fn new(
        after: Option<u64>,
        connect: &PgConnectOptions,
        statement: &str,
        schema: &str,
    ) -> DrainVacuum {
        DrainVacuum {
            after,
            claimed: AtomicU64::new(0),
            connect: connect.clone().application_name(APPLICATION_NAME),
            statement: statement.to_string(),
            schema: schema.to_string(),
            task: Mutex::new(None),
        }
    }

    /// Records a claim that returned `got` jobs and found every queue it
    /// asked `drained`; starts a vacuum when one is due and none runs.
    pub(crate) fn claimed(&self, got: usize, drained: bool) {
        let Some(after) = self.after else {
            return;
        };
        let got = got as u64;
        let total = self.claimed.fetch_add(got, Ordering::Relaxed) + got;
        if !drained || total < after {
            return;
        }
        let mut slot = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        self.claimed.store(0, Ordering::Relaxed);
        let connect = self.connect.clone();
        let statement = self.statement.clone();
        let schema = self.schema.clone();
        *slot = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            match vacuum(&connect, &statement).await {
                Ok(()) => tracing::debug!(
                    schema,
                    claimed = total,
                    took = ?started.elapsed(),
                    "vacuumed the jobs table after a drained burst"
                ),
                // Not the store's operations failing: the table is vacuumed
                // by autovacuum anyway, later. A role that does not own the
                // table gets a warning from the server, not an error.
                Err(e) => tracing::warn!(schema, error = %e, "vacuum of the jobs table failed"),
            }
        }));
    }

    /// Stops the vacuum task, if one runs, and waits for it to end (a
    /// `VACUUM` the server already runs finishes there).
    pub(crate) async fn stop(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for DrainVacuum {
    fn drop(&mut self) {
        let slot = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = slot.take() {
            task.abort();
        }
    }
}
