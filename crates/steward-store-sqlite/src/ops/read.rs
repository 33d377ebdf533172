//! Reads, served by the read pool rather than the writer: one job and the
//! counts per state (a page of jobs: `query.rs`, which decodes as here).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use steward_core::store::{AttemptError, JobId, JobRecord, JobState, StateCounts};

use crate::sql::{decode_error, duration_col, opt_time_col, time_col, u32_col};

/// The columns [`decode`] reads: `job` and `jobs` share them (and the
/// decoding), so a listed record is exactly what `job(id)` returns.
macro_rules! job_columns {
    () => {
        "id, kind, queue, state, priority, payload, attempt, max_attempts, run_at,
             created_at, attempted_at, finished_at, errors, checkpoint, worker,
             lease_expires_at, rescues, interrupted, cancel_requested, timeout_ms,
             unique_key, unique_held, payload_version"
    };
}

const JOB: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM steward_jobs WHERE id = ?1"
);

/// The columns as one string, for statements built at run time
/// (`query.rs`).
pub(crate) const JOB_COLUMNS: &str = job_columns!();

/// One job with its errors, or `None`.
pub(crate) async fn job(
    conn: &mut SqliteConnection,
    id: JobId,
) -> Result<Option<JobRecord>, sqlx::Error> {
    let row = sqlx::query(JOB)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

pub(crate) fn decode(row: &SqliteRow) -> Result<JobRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let priority: i64 = row.try_get("priority")?;
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
        priority: i16::try_from(priority)
            .map_err(|_| decode_error(format!("priority {priority} is not an i16")))?,
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
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        timeout: duration_col(row, "timeout_ms")?,
        // The key as given, while the job holds it (a window's bucket is an
        // implementation detail of the index).
        unique_key: held.and(unique_key),
    })
}

/// How many jobs are in each state.
///
/// A full scan of the table (there is deliberately no index on `state`
/// alone: it would cost a write at every transition of every job to speed
/// up a dashboard query). Pruning keeps the table small.
pub(crate) async fn counts(conn: &mut SqliteConnection) -> Result<StateCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM steward_jobs GROUP BY state")
            .fetch_all(&mut *conn)
            .await?;
    let mut counts = StateCounts::default();
    for (state, n) in rows {
        let state = state.parse::<JobState>().map_err(decode_error)?;
        counts.set(state, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}
