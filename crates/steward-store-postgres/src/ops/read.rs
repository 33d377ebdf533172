//! Reads: one job and the counts per state (a page of jobs: `query.rs`,
//! which decodes as here).

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use steward_core::store::{AttemptError, JobId, JobRecord, JobState, StateCounts};

use super::Sql;
use crate::error::decode_error;
use crate::ops::columns::{duration_col, opt_time_col, time_col, u32_col};

/// The columns [`decode`] reads: `job` and `jobs` share them (and the
/// decoding), so a listed record is exactly what `job(id)` returns.
macro_rules! job_columns {
    () => {
        "id, kind, queue, state, priority, payload::text AS payload,
        attempt, max_attempts, run_at, created_at, attempted_at, finished_at,
        errors::text AS errors, checkpoint::text AS checkpoint, worker, lease_expires_at,
        rescues, interrupted, cancel_requested, timeout_ms, unique_key, unique_held,
        payload_version"
    };
}

pub(crate) const JOB: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM {schema}.jobs WHERE id = $1"
);

/// The start of `query.rs`'s statements, which add their conditions
/// after `WHERE true`.
pub(crate) const JOBS: &str = concat!("SELECT ", job_columns!(), " FROM {schema}.jobs WHERE true");

/// A full scan (there is deliberately no index on `state` alone: it would
/// cost an index write at every transition of every job to speed up a
/// dashboard query). Pruning keeps the table small.
pub(crate) const COUNTS: &str = "SELECT state, count(*) FROM {schema}.jobs GROUP BY state";

/// One job with its errors, or `None`.
pub(crate) async fn job(
    conn: &mut PgConnection,
    sql: &Sql,
    id: JobId,
) -> Result<Option<JobRecord>, sqlx::Error> {
    let row = sqlx::query(&sql.job)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

pub(crate) fn decode(row: &PgRow) -> Result<JobRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let errors: String = row.try_get("errors")?;
    let errors: Vec<AttemptError> = serde_json::from_str(&errors).map_err(|e| {
        decode_error(format!(
            "column errors is not a list of attempt errors: {e}"
        ))
    })?;
    let held: Option<String> = row.try_get("unique_held")?;
    let unique_key: Option<String> = row.try_get("unique_key")?;
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        kind: row.try_get("kind")?,
        queue: row.try_get("queue")?,
        state: state.parse::<JobState>().map_err(decode_error)?,
        priority: row.try_get("priority")?,
        payload: row.try_get("payload")?,
        payload_version: u32_col(row, "payload_version")?,
        attempt: u32_col(row, "attempt")?,
        max_attempts: u32_col(row, "max_attempts")?,
        run_at: time_col(row, "run_at")?,
        created_at: time_col(row, "created_at")?,
        attempted_at: opt_time_col(row, "attempted_at")?,
        finished_at: opt_time_col(row, "finished_at")?,
        errors,
        checkpoint: row.try_get("checkpoint")?,
        worker: row.try_get("worker")?,
        lease_expires_at: opt_time_col(row, "lease_expires_at")?,
        rescues: u32_col(row, "rescues")?,
        interrupted: u32_col(row, "interrupted")?,
        cancel_requested: row.try_get("cancel_requested")?,
        timeout: duration_col(row, "timeout_ms")?,
        // The key as given, while the job holds it (a window's bucket is an
        // implementation detail of the index).
        unique_key: held.and(unique_key),
    })
}

/// How many jobs are in each state.
pub(crate) async fn counts(conn: &mut PgConnection, sql: &Sql) -> Result<StateCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(&sql.counts).fetch_all(&mut *conn).await?;
    let mut counts = StateCounts::default();
    for (state, n) in rows {
        let state = state.parse::<JobState>().map_err(decode_error)?;
        counts.set(state, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}
