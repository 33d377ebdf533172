//! Queue settings: pause and resume on the writer; the paused names (what
//! every worker polls) and the list of queues with their counts on the read
//! pool.

use std::collections::BTreeMap;

use sqlx::SqliteConnection;
use steward_core::store::{QueueChange, QueueInfo};

use crate::sql::decode_error;

/// Pauses (`paused`) or resumes `queue` at `now`, in the writer's
/// transaction. A queue is known if it has a setting row or any job; an
/// unknown one is left alone (`Unknown`), so a typo does not make a queue.
pub(crate) async fn set_paused(
    conn: &mut SqliteConnection,
    now: i64,
    queue: &str,
    paused: bool,
) -> Result<QueueChange, sqlx::Error> {
    let changed = if paused {
        "UPDATE steward_queues SET paused_at = ?2, updated_at = ?2
         WHERE name = ?1 AND paused_at IS NULL"
    } else {
        "UPDATE steward_queues SET paused_at = NULL, updated_at = ?2
         WHERE name = ?1 AND paused_at IS NOT NULL"
    };
    let n = sqlx::query(changed)
        .bind(queue)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if n > 0 {
        return Ok(QueueChange::Changed);
    }
    let has_row: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM steward_queues WHERE name = ?1)")
            .bind(queue)
            .fetch_one(&mut *conn)
            .await?;
    if has_row {
        return Ok(QueueChange::Unchanged);
    }
    // Not indexed for finished jobs (the claim indexes hold queued ones
    // only): an operator's command may scan, a worker never runs this.
    let has_jobs: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM steward_jobs WHERE queue = ?1)")
            .bind(queue)
            .fetch_one(&mut *conn)
            .await?;
    if !has_jobs {
        return Ok(QueueChange::Unknown);
    }
    if !paused {
        return Ok(QueueChange::Unchanged);
    }
    sqlx::query("INSERT INTO steward_queues (name, paused_at, updated_at) VALUES (?1, ?2, ?2)")
        .bind(queue)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(QueueChange::Changed)
}

/// The paused queues' names, sorted: one read of the settings table.
pub(crate) async fn paused(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM steward_queues WHERE paused_at IS NOT NULL ORDER BY name")
        .fetch_all(&mut *conn)
        .await
}

/// Every queue with jobs or a setting, by name.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<QueueInfo>, sqlx::Error> {
    // The counts of `grouped_counts`: one home for counting jobs by queue.
    let mut counts = super::grouped::grouped_counts(conn).await?.by_queue;
    let settings: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT name, paused_at FROM steward_queues")
            .fetch_all(&mut *conn)
            .await?;
    let mut since = BTreeMap::new();
    for (name, paused_at) in settings {
        counts.entry(name.clone()).or_default();
        since.insert(name, paused_at);
    }
    counts
        .into_iter()
        .map(|(name, counts)| {
            let paused_since = match since.get(&name).copied().flatten() {
                Some(ms) => {
                    Some(chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| {
                        decode_error(format!("paused_at {ms} ms is out of range"))
                    })?)
                }
                None => None,
            };
            Ok(QueueInfo {
                name,
                counts,
                paused_since,
            })
        })
        .collect()
}
