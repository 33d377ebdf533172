//! Operator and maintenance writes: cancel, retry, rescue, prune; and the
//! tests' time travel.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use steward_core::store::{
    CancelResult, JobId, RescueReport, WORKER_LOST, WORKER_LOST_TIMES, rescue_tallies,
};

use super::Sql;
use crate::ops::{history, lease};
use crate::sql::now_text;

/// Cancels jobs (`$1`, an array: one for `cancel`, a chunk's for
/// `act_on_jobs`) in one statement: queued → cancelled now (its
/// queued/active key released); running → flagged for its worker's next
/// heartbeat. The row lock taken by the UPDATE makes the state it reads the
/// state it changes. Returns the new states, or no row for a finished or
/// unknown job.
pub(crate) const CANCEL: &str = "UPDATE {schema}.jobs SET
        state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
        finished_at = CASE WHEN state = 'running' THEN finished_at ELSE now() END,
        cancel_requested = cancel_requested OR state = 'running',
        unique_held = CASE WHEN state <> 'running' AND unique_scope IS DISTINCT FROM 'window'
            THEN NULL ELSE unique_held END
    WHERE id = ANY($1) AND state IN ('scheduled', 'available', 'retryable', 'running')
    RETURNING state";

pub(crate) const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM {schema}.jobs WHERE id = $1)";

/// An operator's retry of a finished job: available now with a fresh
/// attempt budget; its errors are kept. `$key` is what it does with its
/// unique key (see [`RETRY`]).
macro_rules! retry {
    ($key:literal) => {
        concat!(
            "UPDATE {schema}.jobs AS j SET state = 'available', run_at = now(),
                attempt = 0, finished_at = NULL, cancel_requested = false, rescues = 0,
                checkpoint = CASE WHEN j.state = 'completed' THEN NULL ELSE j.checkpoint END",
            $key,
            " WHERE j.id = $1 AND j.state IN ('dead', 'cancelled', 'completed')
            RETURNING j.queue"
        )
    };
}

/// An operator's retry that queues the job again, so it takes back the
/// queued/active unique key it let go of when it finished, unless another
/// job holds the key now (then it runs without one). The check cannot see
/// an enqueue of the key that commits after this statement's snapshot: the
/// write then fails with a unique violation on `jobs_unique`, and
/// [`RETRY_WITHOUT_KEY`] is run instead, so a key never fails the retry.
pub(crate) const RETRY: &str = retry!(
    ", unique_held = CASE WHEN j.unique_held IS NULL
            AND j.unique_scope IN ('queued', 'active')
            AND NOT EXISTS (SELECT 1 FROM {schema}.jobs AS o WHERE o.unique_held = j.unique_key)
        THEN j.unique_key ELSE j.unique_held END"
);

/// An operator's retry that leaves the job's unique key as it is: for when
/// another job took the key after all (see [`RETRY`]).
pub(crate) const RETRY_WITHOUT_KEY: &str = retry!("");

/// Rescues running jobs whose lease expired, in one statement: every
/// expression on the right of `SET` reads the row as it was, so
/// `rescues + 1` is the new count throughout. Walks the `jobs_running`
/// index; a worker's concurrent finish of the same row is serialized by the
/// row lock, and the loser re-checks its WHERE against the winner's row.
pub(crate) const RESCUE: &str = concat!(
    "UPDATE {schema}.jobs SET
        rescues = rescues + 1,
        errors = errors || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'at', ",
    now_text!(),
    ", 'kind', 'worker_lost',
            'message', CASE WHEN rescues + 1 >= $1
                THEN $2::text || (rescues + 1) || $3::text
                ELSE $4::text END)),
        state = CASE WHEN rescues + 1 >= $1 THEN 'dead' ELSE 'available' END,
        finished_at = CASE WHEN rescues + 1 >= $1 THEN now() ELSE NULL END,
        run_at = CASE WHEN rescues + 1 >= $1 THEN run_at ELSE now() END,
        attempt = CASE WHEN rescues + 1 >= $1 THEN attempt ELSE attempt - 1 END,
        unique_held = CASE WHEN rescues + 1 >= $1 AND unique_scope IS DISTINCT FROM 'window'
            THEN NULL ELSE unique_held END,
        lease_token = NULL, lease_expires_at = NULL, worker = NULL
    WHERE state = 'running' AND lease_expires_at < now()
    RETURNING id, state, queue, kind"
);

/// The two retention cutoffs (`now() - age`, ages in microseconds, capped
/// by `clock::MAX_AGE_US`), resolved once against the database's clock so
/// every chunk of one prune uses the same cutoffs.
pub(crate) const PRUNE_CUTOFFS: &str = "SELECT
        now() - $1::bigint * interval '1 microsecond',
        now() - $2::bigint * interval '1 microsecond'";

/// Deletes up to `$4` prunable jobs after id `$3`, walking the primary key;
/// returns how many and the last id looked at. Chunks keep each
/// transaction (and its locks and WAL) small, and continuing from the last
/// id keeps a long prune from rescanning what it already passed.
pub(crate) const PRUNE_CHUNK: &str = "WITH scanned AS (
         SELECT id, state, finished_at FROM {schema}.jobs
         WHERE id > $3 ORDER BY id LIMIT $4),
     gone AS (
         DELETE FROM {schema}.jobs AS j USING scanned AS s
         WHERE j.id = s.id AND j.finished_at IS NOT NULL
             AND ((j.state = 'completed' AND j.finished_at < $1)
                  OR (j.state IN ('dead', 'cancelled') AND j.finished_at < $2))
         RETURNING j.id)
     SELECT (SELECT count(*) FROM gone), (SELECT max(id) FROM scanned)";

/// `$1` bigint microseconds earlier than `$col`, saturating at the earliest
/// time a job may have (`EARLIEST_TIME`, 0001-01-01 UTC). Tested before
/// subtracting: `$col - $1` itself could fall before PostgreSQL's earliest
/// timestamp (4713 BC) and fail. `$1` is capped in Rust at
/// `clock::MAX_DELAY_US` (over 10,000 years, more than the whole range), so
/// the earliest time plus `$1` never overflows either.
macro_rules! earlier_saturating {
    ($col:literal) => {
        concat!(
            "CASE WHEN ",
            $col,
            " < '0001-01-01 00:00:00+00'::timestamptz + $1::bigint * interval '1 microsecond'
                THEN '0001-01-01 00:00:00+00'::timestamptz
                ELSE ",
            $col,
            " - $1::bigint * interval '1 microsecond' END"
        )
    };
}

/// For tests: every waiting job's `run_at` moves `$1` microseconds earlier
/// (see `earlier_saturating!`). Jobs already at the earliest time cannot
/// move and are not counted. Answers how many moved, the queues of those
/// now due (to announce), and in how many milliseconds the earliest one
/// still ahead comes due.
pub(crate) const TIME_TRAVEL_JOBS: &str = concat!(
    "WITH moved AS (
        UPDATE {schema}.jobs SET run_at = ",
    earlier_saturating!("run_at"),
    " WHERE state IN ('scheduled', 'available', 'retryable')
            AND run_at > '0001-01-01 00:00:00+00'::timestamptz
        RETURNING queue, run_at)
    SELECT count(*),
        coalesce(array_agg(DISTINCT queue) FILTER (WHERE run_at <= now()), '{}'::text[]),
        ceil(extract(epoch FROM min(run_at) FILTER (WHERE run_at > now()) - now()) * 1000)::bigint
    FROM moved"
);

/// For tests: every schedule's tick owed and last tick move `$1`
/// microseconds earlier, as its jobs' times do. The fired ticks are
/// forgotten rather than moved (moving a primary key row by row collides
/// with a neighbour not moved yet): they are history, and the tick owed,
/// moved, fences every fire anyway.
pub(crate) const TIME_TRAVEL_SCHEDULES: &str = concat!(
    "WITH forgotten AS (DELETE FROM {schema}.schedule_ticks)
     UPDATE {schema}.schedules SET next_at = ",
    earlier_saturating!("next_at"),
    ", last_tick = ",
    earlier_saturating!("last_tick"),
);

/// What a time travel did to the jobs.
pub(crate) struct Travelled {
    /// How many jobs moved.
    pub(crate) moved: u64,
    /// The queues of moved jobs that are due now.
    pub(crate) due_queues: BTreeSet<String>,
    /// When the earliest moved job still ahead comes due.
    pub(crate) next_due: Option<Duration>,
}

/// Moves waiting jobs and armed schedules `by_us` microseconds earlier
/// (see [`TIME_TRAVEL_JOBS`]); run both in one transaction.
pub(crate) async fn time_travel(
    conn: &mut PgConnection,
    sql: &Sql,
    by_us: i64,
) -> Result<Travelled, sqlx::Error> {
    let (moved, queues, next_ms): (i64, Vec<String>, Option<i64>) =
        sqlx::query_as(&sql.time_travel_jobs)
            .bind(by_us)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(&sql.time_travel_schedules)
        .bind(by_us)
        .execute(&mut *conn)
        .await?;
    Ok(Travelled {
        moved: u64::try_from(moved).unwrap_or(0),
        due_queues: queues.into_iter().collect(),
        next_due: next_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// Rows one prune step looks at.
const PRUNE_STEP: i64 = 5_000;

pub(crate) async fn cancel(
    conn: &mut PgConnection,
    sql: &Sql,
    id: JobId,
) -> Result<CancelResult, sqlx::Error> {
    let state: Option<String> = sqlx::query_scalar(&sql.cancel)
        .bind([id.0])
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match state.as_deref() {
        Some("running") => CancelResult::Requested,
        Some(_) => CancelResult::Cancelled,
        None => {
            let exists: bool = sqlx::query_scalar(&sql.exists)
                .bind(id.0)
                .fetch_one(&mut *conn)
                .await?;
            if exists {
                CancelResult::AlreadyFinished
            } else {
                CancelResult::NotFound
            }
        }
    })
}

/// Retries a finished job; returns its queue if it was retried. Runs in
/// autocommit: a statement that fails on the key undoes only itself, and
/// the retry is then written without the key.
pub(crate) async fn retry(
    conn: &mut PgConnection,
    sql: &Sql,
    id: JobId,
) -> Result<Option<String>, sqlx::Error> {
    match retry_once(conn, sql, id).await {
        Err(e) if is_key_taken(&e) => {
            sqlx::query_scalar(&sql.retry_without_key)
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await
        }
        other => other,
    }
}

/// [`RETRY`] alone: fails if another job took the key meanwhile (see
/// [`is_key_taken`]).
pub(crate) async fn retry_once(
    conn: &mut PgConnection,
    sql: &Sql,
    id: JobId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(&sql.retry)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
}

/// Whether a retry failed because another job holds its unique key.
pub(crate) fn is_key_taken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.is_unique_violation() && db.constraint() == Some("jobs_unique"))
}

/// Rescues expired leases; returns the counts and the queues of the jobs
/// made available again.
pub(crate) async fn rescue(
    conn: &mut PgConnection,
    sql: &Sql,
    max_rescues: u32,
) -> Result<(RescueReport, BTreeSet<String>), sqlx::Error> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(&sql.rescue)
        .bind(i64::from(max_rescues))
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
    let cancelled = lease::settle_cancels(conn, sql, requeued.clone()).await?;
    let report = RescueReport {
        rescued: requeued.len() as u64 - cancelled,
        dead,
        cancelled,
    };
    let tallies = rescue_tallies(rows.iter().map(|(_, s, q, k)| (q, k, s == "dead")));
    history::add_rescues(conn, sql, tallies).await?;
    let queues = rows
        .into_iter()
        .filter(|(_, s, ..)| s != "dead")
        .map(|(_, _, queue, _)| queue)
        .collect();
    Ok((report, queues))
}

/// Resolves the cutoffs (ages in microseconds) against the database's clock.
pub(crate) async fn prune_cutoffs(
    conn: &mut PgConnection,
    sql: &Sql,
    completed_age_us: i64,
    dead_age_us: i64,
) -> Result<(DateTime<Utc>, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(&sql.prune_cutoffs)
        .bind(completed_age_us)
        .bind(dead_age_us)
        .fetch_one(&mut *conn)
        .await
}

/// One prune step after `after_id`: how many were deleted, and the id to
/// continue after (`None` at the end of the table).
pub(crate) async fn prune_step(
    conn: &mut PgConnection,
    sql: &Sql,
    cutoffs: (DateTime<Utc>, DateTime<Utc>),
    after_id: i64,
) -> Result<(u64, Option<i64>), sqlx::Error> {
    let (deleted, last): (i64, Option<i64>) = sqlx::query_as(&sql.prune_chunk)
        .bind(cutoffs.0)
        .bind(cutoffs.1)
        .bind(after_id)
        .bind(PRUNE_STEP)
        .fetch_one(&mut *conn)
        .await?;
    Ok((u64::try_from(deleted).unwrap_or(0), last))
}

#[cfg(test)]
mod tests {
    use steward_core::store::EARLIEST_TIME;

    /// The SQL's earliest time is `EARLIEST_TIME`, spelled out.
    #[test]
    fn time_travel_saturates_at_the_earliest_time() {
        let spelled = EARLIEST_TIME.format("%Y-%m-%d %H:%M:%S+00").to_string();
        assert_eq!(spelled, "0001-01-01 00:00:00+00");
        assert!(earlier_saturating!("run_at").contains(&spelled));
        assert!(super::TIME_TRAVEL_JOBS.contains(&spelled));
    }
}
