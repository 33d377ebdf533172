//! WAL checkpoints in the background, off the writer.
//!
//! SQLite checkpoints on the connection whose commit pushes the WAL past
//! `wal_autocheckpoint` pages: that is the single writer, and a checkpoint
//! copies tens of MiB into the database file and syncs it. Measured: single
//! commits of 47–61 ms during `steward bench jobs`, each delaying every
//! operation queued behind it (latency probes saw them as p99 spikes). So a
//! task checkpoints often from a read connection instead, in `PASSIVE` mode
//! (it copies what no reader still needs and never waits for, or blocks,
//! the writer), and the writer's next transaction restarts the WAL from its
//! start once all of it is copied. The writer's own autocheckpoint stays as
//! the safety net if this task falls behind.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio_util::sync::CancellationToken;

/// How often the task checkpoints. A call with nothing to copy costs a
/// look at the WAL index; one after a busy interval copies what it wrote.
const EVERY: Duration = Duration::from_millis(250);

/// Runs until `shutdown`.
pub(crate) async fn run(pool: SqlitePool, file: Arc<str>, shutdown: CancellationToken) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let result: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match result {
            Ok(_) => failing = false,
            // Logged once per run of failures: a locked or unreadable file is
            // reported by the operations themselves; here it only means the
            // writer's autocheckpoint does the work meanwhile.
            Err(e) if !failing => {
                failing = true;
                tracing::debug!(file = &*file, error = %e, "background checkpoint failed; the writer checkpoints meanwhile");
            }
            Err(_) => {}
        }
    }
}
