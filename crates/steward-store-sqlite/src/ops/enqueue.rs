//! Inserting jobs: validation, multi-row inserts, unique keys.
//!
//! Used by the writer task (many callers' enqueues merged into one
//! statement stream) and by [`enqueue_in`](crate::enqueue_in) on a caller's
//! own transaction: the same SQL and the same validation either way.

use std::sync::OnceLock;

use sqlx::SqliteConnection;
use steward_core::store::{Enqueued, JobId, NewJob, StoreError, UniqueScope};

use crate::sql::{decode_error, duration_ms, later_ms};

/// Rows per plain insert statement, as powers of two: a batch of any size is
/// cut into chunks of these sizes, so at most this many distinct statements
/// are ever prepared and cached, while a big batch still inserts 256 rows
/// per statement (2,560 parameters, well inside SQLite's limit of 32,766).
const CHUNK_SIZES: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

const COLUMNS: &str = "created_at, kind, queue, payload, payload_version, priority, state, max_attempts, run_at, timeout_ms";

/// Checks a whole batch before anything is written (the rules all stores
/// share, in core), so an invalid job refuses the batch with
/// [`StoreError::Invalid`] and writes nothing.
pub(crate) fn validate(jobs: &[NewJob]) -> Result<(), StoreError> {
    steward_core::store::validate_new_jobs(jobs)
}

/// True if [`insert`] writes these jobs with a single statement: no unique
/// keys (a duplicate needs a second statement to find the holder) and a
/// count that is one of the chunk sizes.
pub(crate) fn is_one_statement(jobs: &[NewJob]) -> bool {
    CHUNK_SIZES.contains(&jobs.len()) && jobs.iter().all(|j| j.unique.is_none())
}

/// Inserts validated jobs in order; returns one [`Enqueued`] per job and
/// whether any job was inserted (the caller's cue to wake workers).
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    now: i64,
    jobs: &[&NewJob],
) -> Result<(Vec<Enqueued>, bool), sqlx::Error> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut inserted = false;
    let mut i = 0;
    while i < jobs.len() {
        if jobs[i].unique.is_some() {
            // One at a time: a later job of the batch may be a duplicate of
            // this one, and must see it.
            let result = insert_unique(conn, now, jobs[i]).await?;
            inserted |= !result.duplicate;
            out.push(result);
            i += 1;
        } else {
            let end = jobs[i..]
                .iter()
                .position(|j| j.unique.is_some())
                .map_or(jobs.len(), |p| i + p);
            insert_plain(conn, now, &jobs[i..end], &mut out).await?;
            inserted = true;
            i = end;
        }
    }
    Ok((out, inserted))
}

/// The multi-row insert statement for `rows` rows.
fn plain_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        CHUNK_SIZES
            .iter()
            .map(|&n| {
                // Anonymous `?` parameters, not `?NNN`: the driver looks up
                // every parameter's name, and SQLite finds a numbered name
                // by a linear scan — quadratic in a 2,560-parameter
                // statement (it was 75% of the insert's time).
                let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
                format!(
                    "INSERT INTO steward_jobs ({COLUMNS}) VALUES {}",
                    vec![row; n].join(", ")
                )
            })
            .collect()
    });
    let index = CHUNK_SIZES
        .iter()
        .position(|&n| n == rows)
        .unwrap_or(CHUNK_SIZES.len() - 1);
    &all[index]
}

/// Inserts jobs without unique keys, many rows per statement.
async fn insert_plain(
    conn: &mut SqliteConnection,
    now: i64,
    jobs: &[&NewJob],
    out: &mut Vec<Enqueued>,
) -> Result<(), sqlx::Error> {
    let mut rest = jobs;
    while !rest.is_empty() {
        let n = CHUNK_SIZES
            .iter()
            .copied()
            .find(|&n| n <= rest.len())
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(n);
        let mut query = sqlx::query(plain_sql(n));
        for job in chunk {
            let run_at = run_at_ms(job, now);
            query = query
                .bind(now)
                .bind(job.kind.as_str())
                .bind(job.queue.as_str())
                .bind(job.payload.as_str())
                .bind(i64::from(job.payload_version))
                .bind(i64::from(job.priority))
                .bind(initial_state(run_at, now))
                .bind(i64::from(job.max_attempts))
                .bind(run_at)
                .bind(timeout_ms(job));
        }
        let result = query.execute(&mut *conn).await?;
        // One statement inserts its rows in VALUES order with consecutive
        // AUTOINCREMENT ids (nothing else writes in between: we hold the
        // write lock), so the ids are the last one and the n-1 before it.
        if result.rows_affected() != n as u64 {
            return Err(decode_error(format!(
                "inserted {} rows, expected {n}",
                result.rows_affected()
            )));
        }
        let last = result.last_insert_rowid();
        let first = last - (n as i64 - 1);
        out.extend((first..=last).map(|id| Enqueued {
            id: JobId(id),
            duplicate: false,
        }));
        rest = tail;
    }
    Ok(())
}

/// Inserts one job with a unique key, or reports the key's holder.
async fn insert_unique(
    conn: &mut SqliteConnection,
    now: i64,
    job: &NewJob,
) -> Result<Enqueued, sqlx::Error> {
    let Some((key, scope)) = &job.unique else {
        return Err(decode_error("insert_unique without a key".into()));
    };
    let held = held_key(key, *scope, now);
    let run_at = run_at_ms(job, now);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO steward_jobs (created_at, kind, queue, payload, payload_version, priority,
             state, max_attempts, run_at, timeout_ms, unique_key, unique_scope, unique_held)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (unique_held) WHERE unique_held IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(now)
    .bind(job.kind.as_str())
    .bind(job.queue.as_str())
    .bind(job.payload.as_str())
    .bind(i64::from(job.payload_version))
    .bind(i64::from(job.priority))
    .bind(initial_state(run_at, now))
    .bind(i64::from(job.max_attempts))
    .bind(run_at)
    .bind(timeout_ms(job))
    .bind(key.as_str())
    .bind(scope.as_str())
    .bind(held.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(Enqueued {
            id: JobId(id),
            duplicate: false,
        });
    }
    let holder: i64 = sqlx::query_scalar("SELECT id FROM steward_jobs WHERE unique_held = ?1")
        .bind(held.as_str())
        .fetch_one(&mut *conn)
        .await?;
    Ok(Enqueued {
        id: JobId(holder),
        duplicate: true,
    })
}

/// The key as held in the unique index. A window's key carries its bucket
/// (`floor(now / window)`) and the window's length, so the same key is free
/// again in the next window, and never collides with a queued/active key.
fn held_key(key: &str, scope: UniqueScope, now: i64) -> String {
    match scope {
        UniqueScope::Queued | UniqueScope::Active => key.to_string(),
        UniqueScope::Window(window) => {
            // Validated: at least 1 ms and within i64.
            let w = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
            format!("{key}\u{1f}window:{w}:{}", now.div_euclid(w))
        }
    }
}

/// When the job is due: its own `run_at`, or `delay` after the store's now
/// (validated: not both), or now.
fn run_at_ms(job: &NewJob, now: i64) -> i64 {
    match (job.run_at, job.delay) {
        (Some(at), _) => at.timestamp_millis(),
        (None, Some(delay)) => later_ms(now, delay),
        (None, None) => now,
    }
}

fn initial_state(run_at: i64, now: i64) -> &'static str {
    if run_at > now {
        "scheduled"
    } else {
        "available"
    }
}

fn timeout_ms(job: &NewJob) -> Option<i64> {
    // Validated before insert; a failure here cannot happen.
    job.timeout.and_then(|t| duration_ms("timeout", t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn invalid_jobs_are_refused() {
        let bad = [
            NewJob::new("", "null"),
            NewJob::new("k", "null").queue(""),
            NewJob::new("k", "null").max_attempts(0),
            NewJob::new("k", "null").payload_version(0),
            NewJob::new("k", "{not json"),
            NewJob::new("k", "null").unique("u", UniqueScope::Window(Duration::ZERO)),
            NewJob::new("k", "null")
                .run_at(chrono::Utc::now())
                .delay(Duration::from_secs(1)),
        ];
        for job in bad {
            let err = validate(std::slice::from_ref(&job));
            assert!(matches!(err, Err(StoreError::Invalid { .. })), "{job:?}");
        }
        assert!(validate(&[NewJob::new("k", r#"{"a":[1,2]}"#)]).is_ok());
        assert!(validate(&[NewJob::new("k", "null").delay(Duration::MAX)]).is_ok());
    }

    #[test]
    fn window_keys_are_bucketed() {
        let w = UniqueScope::Window(Duration::from_secs(10));
        assert_eq!(held_key("k", w, 10_000), held_key("k", w, 19_999));
        assert_ne!(held_key("k", w, 19_999), held_key("k", w, 20_000));
        assert_ne!(
            held_key("k", w, 10_000),
            held_key("k", UniqueScope::Queued, 0)
        );
    }

    #[test]
    fn plain_sql_has_the_requested_rows() {
        for n in CHUNK_SIZES {
            assert_eq!(plain_sql(n).matches("(?,").count(), n);
            assert_eq!(
                plain_sql(n).matches('?').count(),
                n * 10,
                "a row per column"
            );
        }
    }
}
