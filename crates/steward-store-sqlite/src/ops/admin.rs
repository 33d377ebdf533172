//! Operator and maintenance writes: cancel, retry, rescue, prune; and the
//! tests' time travel.

use std::time::Duration;

use sqlx::SqliteConnection;
use steward_core::store::{
    CancelResult, JobId, JobState, RescueReport, WORKER_LOST, WORKER_LOST_TIMES, minute_start_ms,
    rescue_tallies,
};

use crate::ops::history;
use crate::ops::lease::settle_cancels;
use crate::sql::{decode_error, earliest_ms, rfc3339_ms};

/// Cancels a job: queued → cancelled now (its queued/active key released);
/// running → flagged for its worker's next heartbeat.
pub(crate) async fn cancel(
    conn: &mut SqliteConnection,
    now: i64,
    id: JobId,
) -> Result<CancelResult, sqlx::Error> {
    // We hold the write lock (BEGIN IMMEDIATE), so the state read here is
    // the state the update below applies to.
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM steward_jobs WHERE id = ?1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(state) = state else {
        return Ok(CancelResult::NotFound);
    };
    let state: JobState = state.parse().map_err(decode_error)?;
    match state {
        JobState::Scheduled | JobState::Available | JobState::Retryable => {
            sqlx::query(
                "UPDATE steward_jobs SET state = 'cancelled', finished_at = ?2,
                     unique_held = CASE WHEN unique_scope = 'window' THEN unique_held ELSE NULL END
                 WHERE id = ?1",
            )
            .bind(id.0)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(CancelResult::Cancelled)
        }
        JobState::Running => {
            sqlx::query("UPDATE steward_jobs SET cancel_requested = 1 WHERE id = ?1")
                .bind(id.0)
                .execute(&mut *conn)
                .await?;
            Ok(CancelResult::Requested)
        }
        JobState::Completed | JobState::Dead | JobState::Cancelled => {
            Ok(CancelResult::AlreadyFinished)
        }
    }
}

/// An operator's retry of a finished job: available now with a fresh
/// attempt budget; its errors are kept. The job is queued again, so it
/// takes back the queued/active unique key it let go of when it finished,
/// unless another job holds the key now: then it runs without one, because
/// a key is never a reason to refuse an operator's retry. We hold the write
/// lock (BEGIN IMMEDIATE), so no enqueue can take the key between the
/// check and the write.
pub(crate) async fn retry(
    conn: &mut SqliteConnection,
    now: i64,
    id: JobId,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE steward_jobs AS j SET state = 'available', run_at = ?2, attempt = 0,
             finished_at = NULL, cancel_requested = 0, rescues = 0,
             checkpoint = CASE WHEN j.state = 'completed' THEN NULL ELSE j.checkpoint END,
             unique_held = CASE WHEN j.unique_held IS NULL
                     AND j.unique_scope IN ('queued', 'active')
                     AND NOT EXISTS (SELECT 1 FROM steward_jobs AS o
                                     WHERE o.unique_held = j.unique_key)
                 THEN j.unique_key ELSE j.unique_held END
         WHERE j.id = ?1 AND j.state IN ('dead', 'cancelled', 'completed')",
    )
    .bind(id.0)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Rescues running jobs whose lease expired, in one statement: every
/// expression on the right of `SET` reads the row as it was, so
/// `rescues + 1` is the new count throughout.
const RESCUE: &str = "UPDATE steward_jobs SET
        rescues = rescues + 1,
        errors = json_insert(errors, '$[#]', json_object(
            'attempt', attempt, 'at', ?3, 'kind', 'worker_lost',
            'message', CASE WHEN rescues + 1 >= ?2
                THEN ?4 || (rescues + 1) || ?5
                ELSE ?6 END)),
        state = CASE WHEN rescues + 1 >= ?2 THEN 'dead' ELSE 'available' END,
        finished_at = CASE WHEN rescues + 1 >= ?2 THEN ?1 ELSE NULL END,
        run_at = CASE WHEN rescues + 1 >= ?2 THEN run_at ELSE ?1 END,
        attempt = CASE WHEN rescues + 1 >= ?2 THEN attempt ELSE attempt - 1 END,
        unique_held = CASE WHEN rescues + 1 >= ?2 AND unique_scope <> 'window'
            THEN NULL ELSE unique_held END,
        lease_token = NULL, lease_expires_at = NULL, worker = NULL
    WHERE state = 'running' AND lease_expires_at < ?1
    RETURNING id, state, queue, kind";

/// Rescues expired leases; see [`RESCUE`].
pub(crate) async fn rescue(
    conn: &mut SqliteConnection,
    now: i64,
    max_rescues: u32,
) -> Result<RescueReport, sqlx::Error> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(RESCUE)
        .bind(now)
        .bind(i64::from(max_rescues))
        .bind(rfc3339_ms(now))
        .bind(WORKER_LOST_TIMES.0)
        .bind(WORKER_LOST_TIMES.1)
        .bind(WORKER_LOST)
        .fetch_all(&mut *conn)
        .await?;
    let dead = rows.iter().filter(|(_, s, ..)| s == "dead").count() as u64;
    let requeued: Vec<i64> = rows
        .iter()
        .filter(|(_, s, ..)| s != "dead")
        .map(|(id, ..)| *id)
        .collect();
    let tallies = rescue_tallies(rows.iter().map(|(_, s, q, k)| (q, k, s == "dead")));
    for ((queue, kind), counts) in tallies {
        history::add(conn, minute_start_ms(now), &queue, &kind, &counts, None).await?;
    }
    let cancelled = settle_cancels(conn, now, &requeued).await?;
    Ok(RescueReport {
        rescued: requeued.len() as u64 - cancelled,
        dead,
        cancelled,
    })
}

/// For tests: every waiting job's `run_at` moves `?1` ms earlier, not
/// before `?2` (the earliest time, `EARLIEST_TIME`). `?1` is capped in Rust
/// (`sql::span_ms`) so the subtraction never overflows. Jobs already at the
/// earliest time cannot move and are not counted.
const TIME_TRAVEL_JOBS: &str = "UPDATE steward_jobs SET run_at = max(run_at - ?1, ?2)
    WHERE (state = 'scheduled' OR state = 'available' OR state = 'retryable') AND run_at > ?2
    RETURNING run_at";

/// For tests: every schedule's tick owed and last tick move as its jobs'
/// times do.
const TIME_TRAVEL_SCHEDULES: &str = "UPDATE steward_schedules
    SET next_at = max(next_at - ?1, ?2), last_tick = max(last_tick - ?1, ?2)";

/// The fired ticks are forgotten rather than moved (moving a primary key
/// row by row can collide with a neighbour not moved yet): they are history,
/// and the tick owed, moved, fences every fire anyway.
const TIME_TRAVEL_TICKS: &str = "DELETE FROM steward_schedule_ticks";

/// What a time travel did to the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Travelled {
    /// How many jobs moved.
    pub(crate) moved: u64,
    /// Whether one of them is due now (the workers are woken).
    pub(crate) due_now: bool,
    /// How long until the earliest one still ahead is due.
    pub(crate) next_due: Option<Duration>,
}

/// Moves waiting jobs and armed schedules `by_ms` earlier, at `now`; see
/// [`TIME_TRAVEL_JOBS`].
pub(crate) async fn time_travel(
    conn: &mut SqliteConnection,
    now: i64,
    by_ms: i64,
) -> Result<Travelled, sqlx::Error> {
    let earliest = earliest_ms();
    let run_at: Vec<i64> = sqlx::query_scalar(TIME_TRAVEL_JOBS)
        .bind(by_ms)
        .bind(earliest)
        .fetch_all(&mut *conn)
        .await?;
    sqlx::query(TIME_TRAVEL_SCHEDULES)
        .bind(by_ms)
        .bind(earliest)
        .execute(&mut *conn)
        .await?;
    sqlx::query(TIME_TRAVEL_TICKS).execute(&mut *conn).await?;
    let next = run_at.iter().copied().filter(|&at| at > now).min();
    Ok(Travelled {
        moved: run_at.len() as u64,
        due_now: run_at.iter().any(|&at| at <= now),
        next_due: next.map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0))),
    })
}

/// Jobs one prune step deletes at most: a prune of millions of rows runs
/// as many small steps, each in its own group commit, so it never holds the
/// write lock for long.
pub(crate) const PRUNE_CHUNK: i64 = 5_000;

/// The condition a job must meet to be pruned (`?1` completed_before,
/// `?2` dead_before), checked when candidates are picked and again when
/// they are deleted (a retry may have revived one in between).
macro_rules! prunable {
    () => {
        "finished_at IS NOT NULL AND ((state = 'completed' AND finished_at < ?1)
             OR (state IN ('dead', 'cancelled') AND finished_at < ?2))"
    };
}

/// Up to [`PRUNE_CHUNK`] ids of prunable jobs after `after_id`, in id order.
///
/// Run on a read connection: without an index on `finished_at` (which
/// would cost a write at every completion) this scans the table, and a scan
/// off the writer delays nobody. Continuing from the last id keeps a long
/// prune from rescanning what it already passed.
pub(crate) async fn prune_candidates(
    conn: &mut SqliteConnection,
    completed_before: i64,
    dead_before: i64,
    after_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT id FROM steward_jobs WHERE ",
        prunable!(),
        " AND id > ?3 ORDER BY id LIMIT ?4"
    ))
    .bind(completed_before)
    .bind(dead_before)
    .bind(after_id)
    .bind(PRUNE_CHUNK)
    .fetch_all(&mut *conn)
    .await
}

/// Deletes the given jobs that are still prunable; returns how many.
pub(crate) async fn prune_ids(
    conn: &mut SqliteConnection,
    ids: &[i64],
    completed_before: i64,
    dead_before: i64,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let json = format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    let result = sqlx::query(concat!(
        "DELETE FROM steward_jobs WHERE ",
        prunable!(),
        " AND id IN (SELECT value FROM json_each(?3))"
    ))
    .bind(completed_before)
    .bind(dead_before)
    .bind(json)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected())
}
