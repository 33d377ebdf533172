//! An operator's actions on stored jobs: a chunk's retry, cancel or delete
//! (`act_on_jobs`) and a waiting job's new priority or run time
//! (`reschedule`). Each runs in the store's transaction: the chunk's rows
//! are locked first (in id order, as a finish locks them), so the states
//! read are the states written, and a worker's concurrent finish waits or
//! is waited for instead of being clobbered.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use sqlx::PgConnection;
use steward_core::store::{
    ActOn, Acted, JobAction, JobId, JobState, Reschedule, Rescheduled, RunAt,
};

use super::Sql;
use crate::clock::delay_micros;
use crate::error::decode_error;
use crate::ops::admin;
use crate::sql::after_delay;

/// Locks the chunk's jobs, in id order, and reads their states.
pub(crate) const LOCK: &str =
    "SELECT id, state FROM {schema}.jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Deletes jobs (their errors and checkpoint are in the row; a unique key
/// they held goes with them).
pub(crate) const DELETE: &str = "DELETE FROM {schema}.jobs WHERE id = ANY($1)";

/// Locks one job and reads its state.
pub(crate) const LOCK_ONE: &str = "SELECT state FROM {schema}.jobs WHERE id = $1 FOR UPDATE";

/// A waiting job's new priority (`$2`, if not null) and run time (if `$3`:
/// `$4`, or `$5` microseconds after now, saturating), and the state that
/// follows: a retryable job stays retryable, others are scheduled if ahead.
/// Answers the new state, its queue, and in how many milliseconds it is due
/// (0 or less: due now).
pub(crate) const RESCHEDULE: &str = concat!(
    "WITH t AS (SELECT CASE WHEN $3 THEN coalesce($4::timestamptz, ",
    after_delay!("$5::bigint"),
    ") END AS at)
     UPDATE {schema}.jobs SET priority = coalesce($2, priority),
         run_at = coalesce(t.at, run_at),
         state = CASE WHEN state = 'retryable' THEN state
                      WHEN coalesce(t.at, run_at) > now() THEN 'scheduled'
                      ELSE 'available' END
     FROM t
     WHERE id = $1
     RETURNING state, queue, ceil(extract(epoch FROM run_at - now()) * 1000)::bigint"
);

/// What a chunk did: an answer per id and the queues of retried jobs
/// (to announce).
pub(crate) struct ActedOn {
    pub(crate) acted: Vec<Acted>,
    pub(crate) retried: BTreeSet<String>,
}

/// Applies `chunk` inside the caller's transaction.
pub(crate) async fn act(
    conn: &mut PgConnection,
    sql: &Sql,
    chunk: &ActOn,
) -> Result<ActedOn, sqlx::Error> {
    let ids: Vec<i64> = chunk.ids.iter().map(|id| id.0).collect();
    let rows: Vec<(i64, String)> = sqlx::query_as(&sql.act_lock)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut states = HashMap::with_capacity(rows.len());
    for (id, state) in rows {
        let state: JobState = state.parse().map_err(decode_error)?;
        states.insert(id, state);
    }
    let mut acted = Vec::with_capacity(ids.len());
    let mut chosen = Vec::new();
    for id in &ids {
        acted.push(match states.get(id) {
            None => Acted::NotFound,
            Some(&state) if !chunk.wants(state) => Acted::Skipped(state),
            Some(JobState::Running) => {
                chosen.push(*id);
                Acted::Requested
            }
            Some(_) => {
                chosen.push(*id);
                Acted::Done
            }
        });
    }
    let mut retried = BTreeSet::new();
    if chosen.is_empty() {
        return Ok(ActedOn { acted, retried });
    }
    match chunk.action {
        JobAction::Delete => {
            sqlx::query(&sql.act_delete)
                .bind(&chosen)
                .execute(&mut *conn)
                .await?;
        }
        JobAction::Cancel => {
            sqlx::query(&sql.cancel)
                .bind(&chosen)
                .execute(&mut *conn)
                .await?;
        }
        JobAction::Retry => {
            // One job at a time, in id order, through the single retry's
            // statements: the first of two jobs with one key takes it back,
            // the second then sees it held. A savepoint stands in for the
            // single retry's autocommit, so a key taken by a concurrent
            // enqueue undoes only that statement.
            for id in chosen {
                sqlx::query("SAVEPOINT steward_retry")
                    .execute(&mut *conn)
                    .await?;
                let queue = match admin::retry_once(conn, sql, JobId(id)).await {
                    Err(e) if admin::is_key_taken(&e) => {
                        sqlx::query("ROLLBACK TO SAVEPOINT steward_retry")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query_scalar(&sql.retry_without_key)
                            .bind(id)
                            .fetch_optional(&mut *conn)
                            .await?
                    }
                    other => other?,
                };
                sqlx::query("RELEASE SAVEPOINT steward_retry")
                    .execute(&mut *conn)
                    .await?;
                retried.extend(queue);
            }
        }
    }
    Ok(ActedOn { acted, retried })
}

/// What a reschedule did: the answer, and the job's queue and delay until
/// due if it was changed (to announce or note).
pub(crate) type Moved = (Rescheduled, Option<(String, Option<Duration>)>);

/// Changes a waiting job inside the caller's transaction.
pub(crate) async fn reschedule(
    conn: &mut PgConnection,
    sql: &Sql,
    id: JobId,
    change: &Reschedule,
) -> Result<Moved, sqlx::Error> {
    let state: Option<String> = sqlx::query_scalar(&sql.reschedule_lock)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(state) = state else {
        return Ok((Rescheduled::NotFound, None));
    };
    let state: JobState = state.parse().map_err(decode_error)?;
    if !matches!(
        state,
        JobState::Scheduled | JobState::Available | JobState::Retryable
    ) {
        return Ok((Rescheduled::NotWaiting(state), None));
    }
    let (at, delay_us) = match change.run_at {
        None | Some(RunAt::Now) => (None, 0),
        Some(RunAt::At(at)) => (Some(at), 0),
        Some(RunAt::In(delay)) => (None, delay_micros(delay)),
    };
    let (state, queue, due_ms): (String, String, Option<i64>) = sqlx::query_as(&sql.reschedule)
        .bind(id.0)
        .bind(change.priority)
        .bind(change.run_at.is_some())
        .bind(at)
        .bind(delay_us)
        .fetch_one(&mut *conn)
        .await?;
    let state: JobState = state.parse().map_err(decode_error)?;
    let ahead = due_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    Ok((Rescheduled::Updated(state), Some((queue, ahead))))
}
