//! An operator's actions on stored jobs: a chunk's retry, cancel or delete
//! (`act_on_jobs`) and a waiting job's new priority or run time
//! (`reschedule`). Both run on the writer, inside its transaction, so the
//! states read here are the states written.

use std::collections::HashMap;

use sqlx::SqliteConnection;
use steward_core::store::{
    ActOn, Acted, CancelResult, JobAction, JobId, JobState, Reschedule, Rescheduled, RunAt,
};

use crate::ops::admin;
use crate::sql::{decode_error, later_ms};

/// The ids as a JSON array, for `json_each` (one bound parameter, whatever
/// the chunk's size).
fn json_ids(ids: &[JobId]) -> String {
    let ids: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
    format!("[{}]", ids.join(","))
}

/// Applies `chunk`; returns one answer per id and whether a job was made
/// available (the workers are woken).
pub(crate) async fn act(
    conn: &mut SqliteConnection,
    now: i64,
    chunk: &ActOn,
) -> Result<(Vec<Acted>, bool), sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, state FROM steward_jobs WHERE id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_ids(&chunk.ids))
    .fetch_all(&mut *conn)
    .await?;
    let mut states = HashMap::with_capacity(rows.len());
    for (id, state) in rows {
        states.insert(id, state.parse::<JobState>().map_err(decode_error)?);
    }
    let mut acted = Vec::with_capacity(chunk.ids.len());
    let mut deleted = Vec::new();
    let mut woke = false;
    for id in &chunk.ids {
        let Some(&state) = states.get(&id.0) else {
            acted.push(Acted::NotFound);
            continue;
        };
        if !chunk.wants(state) {
            acted.push(Acted::Skipped(state));
            continue;
        }
        // Retry and cancel one job at a time through the single-job
        // statements, so their rules (unique keys taken back in id order,
        // a running job only flagged) are the very same.
        acted.push(match chunk.action {
            JobAction::Retry => {
                woke |= admin::retry(conn, now, *id).await?;
                Acted::Done
            }
            JobAction::Cancel => match admin::cancel(conn, now, *id).await? {
                CancelResult::Requested => Acted::Requested,
                _ => Acted::Done,
            },
            JobAction::Delete => {
                deleted.push(*id);
                Acted::Done
            }
        });
    }
    if !deleted.is_empty() {
        // The errors and checkpoint live in the row: they go with it, and
        // so does a unique key it held.
        sqlx::query("DELETE FROM steward_jobs WHERE id IN (SELECT value FROM json_each(?1))")
            .bind(json_ids(&deleted))
            .execute(&mut *conn)
            .await?;
    }
    Ok((acted, woke))
}

/// What a reschedule did, and the job's new `run_at` (ms) if it changed.
pub(crate) type Moved = (Rescheduled, Option<i64>);

/// Changes a waiting job's priority and/or run time (see
/// `Store::reschedule`): a retryable job stays retryable, others are
/// scheduled if their run time is ahead, else available.
pub(crate) async fn reschedule(
    conn: &mut SqliteConnection,
    now: i64,
    id: JobId,
    change: &Reschedule,
) -> Result<Moved, sqlx::Error> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM steward_jobs WHERE id = ?1")
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
    let run_at = change.run_at.map(|at| match at {
        RunAt::Now => now,
        RunAt::At(at) => at.timestamp_millis(),
        RunAt::In(delay) => later_ms(now, delay),
    });
    let (state, run_at): (String, i64) = sqlx::query_as(
        "UPDATE steward_jobs SET priority = coalesce(?2, priority),
             run_at = coalesce(?3, run_at),
             state = CASE WHEN state = 'retryable' THEN state
                          WHEN coalesce(?3, run_at) > ?4 THEN 'scheduled'
                          ELSE 'available' END
         WHERE id = ?1
         RETURNING state, run_at",
    )
    .bind(id.0)
    .bind(change.priority)
    .bind(run_at)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let state: JobState = state.parse().map_err(decode_error)?;
    Ok((Rescheduled::Updated(state), Some(run_at)))
}
