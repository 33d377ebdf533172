//! Inserting jobs: validation, batched inserts, unique keys.
//!
//! Used by [`Store::enqueue`](steward_core::store::Store::enqueue) and by
//! [`enqueue_in`](crate::enqueue_in) on a caller's own transaction: the same
//! SQL and the same validation either way.

use std::collections::BTreeSet;

use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgConnection, Postgres};
use steward_core::store::{Enqueued, JobId, NewJob, StoreError, UniqueScope};

use super::Sql;
use crate::clock::{self, When};
use crate::error::decode_error;
use crate::ops::copy;
use crate::sql::after_delay;

/// A batch of jobs without unique keys, in one statement: the columns come
/// as arrays, `unnest` turns them into rows, and `ORDER BY ord` makes the
/// identity column number them in the batch's order.
pub(crate) const PLAIN: &str = concat!(
    "INSERT INTO {schema}.jobs (kind, queue, payload, priority, state, max_attempts,
         run_at, timeout_ms, payload_version)
     SELECT t.kind, t.queue, t.payload::jsonb, t.priority,
         CASE WHEN t.run_at > now() THEN 'scheduled' ELSE 'available' END,
         t.max_attempts, t.run_at, t.timeout_ms, t.payload_version
     FROM (SELECT u.*, coalesce(u.at, ",
    after_delay!("u.delay_us"),
    ") AS run_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::int[],
                       $6::timestamptz[], $7::bigint[], $8::bigint[], $9::int[])
                WITH ORDINALITY AS u(kind, queue, payload, priority, max_attempts, at,
                                     delay_us, timeout_ms, payload_version, ord)) AS t
     ORDER BY t.ord
     RETURNING id"
);

/// One job without a unique key, announced in the same statement: the
/// `NOTIFY` (for a job due now, by the database's clock) runs in the
/// lateral subquery, so a lone enqueue is one statement in autocommit —
/// one round trip and one WAL flush — instead of `BEGIN`, `INSERT`,
/// `pg_notify`, `COMMIT`. The notification is still delivered only if the
/// insert commits. (PostgreSQL keeps a volatile call such as `pg_notify`
/// even though its output is not used.)
pub(crate) const ONE: &str = concat!(
    "WITH ins AS (
         INSERT INTO {schema}.jobs (kind, queue, payload, priority, state, max_attempts,
             run_at, timeout_ms, payload_version)
         SELECT $1, $2, $3::jsonb, $4, CASE WHEN t.run_at > now() THEN 'scheduled'
                 ELSE 'available' END,
             $5, t.run_at, $8, $9
         FROM (SELECT coalesce($6::timestamptz, ",
    after_delay!("$7::bigint"),
    ") AS run_at) AS t
         RETURNING id, state)
     SELECT ins.id FROM ins
     LEFT JOIN LATERAL (SELECT pg_notify($10, $11) WHERE ins.state = 'available') AS n ON true"
);

/// One job with a unique key. The held key is computed in SQL so a
/// window's bucket (`floor(now_ms / window_ms)`) uses the database's clock;
/// it is returned either way so a duplicate's holder can be looked up.
/// `ON CONFLICT DO NOTHING` on the partial unique index waits for a
/// concurrent inserter of the same key to commit or roll back, so two
/// enqueues of one key insert exactly once.
pub(crate) const UNIQUE: &str = concat!(
    "WITH k AS (
         SELECT coalesce($6::timestamptz, ",
    after_delay!("$7::bigint"),
    ") AS run_at,
             CASE WHEN $11::text = 'window'
                 THEN $10::text || chr(31) || 'window:' || $12::bigint || ':'
                     || (floor(extract(epoch FROM now()) * 1000)::bigint / $12::bigint)
                 ELSE $10::text END AS held),
     ins AS (
         INSERT INTO {schema}.jobs (kind, queue, payload, priority, state, max_attempts,
             run_at, timeout_ms, payload_version, unique_key, unique_scope, unique_held)
         SELECT $1, $2, $3::jsonb, $4, CASE WHEN k.run_at > now() THEN 'scheduled'
                 ELSE 'available' END,
             $5, k.run_at, $8, $9, $10, $11, k.held
         FROM k
         ON CONFLICT (unique_held) WHERE unique_held IS NOT NULL DO NOTHING
         RETURNING id)
     SELECT (SELECT id FROM ins) AS id, k.held FROM k"
);

/// The job holding a key. A separate statement from [`UNIQUE`]: under READ
/// COMMITTED it takes a fresh snapshot, which sees the holder that
/// `ON CONFLICT` waited for.
pub(crate) const HOLDER: &str = "SELECT id FROM {schema}.jobs WHERE unique_held = $1";

/// How often a unique insert is tried when its holder vanishes between the
/// conflict and the lookup (it was claimed or finished just then). Each try
/// either inserts or finds a holder unless the key keeps changing hands.
const UNIQUE_TRIES: usize = 10;

/// Checks a whole batch before anything is written (the rules all stores
/// share, in core), so an invalid job refuses the batch with
/// [`StoreError::Invalid`] and writes nothing.
pub(crate) fn validate(jobs: &[NewJob]) -> Result<(), StoreError> {
    steward_core::store::validate_new_jobs(jobs)
}

/// True if [`insert`] writes these jobs with a single statement (no unique
/// keys, and too few for `COPY`), so the caller needs no transaction
/// around it.
pub(crate) fn is_one_statement(jobs: &[NewJob]) -> bool {
    jobs.len() < copy::MIN_JOBS && jobs.iter().all(|j| j.unique.is_none())
}

/// What [`insert`] wrote.
pub(crate) struct Inserted {
    /// One per job, in the batch's order.
    pub(crate) ids: Vec<Enqueued>,
    /// Whether any job was inserted (not a duplicate): the cue to wake this
    /// process's workers.
    pub(crate) any: bool,
    /// The queues of inserted jobs that are due now (no delay, or a
    /// `run_at` not after this machine's clock): what to `NOTIFY`.
    pub(crate) due_queues: BTreeSet<String>,
}

/// How [`insert`] may write large runs of plain jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bulk {
    /// By `COPY` (the store's own connections only: see `copy::insert`).
    Copy,
    /// By `INSERT` only (a caller's connection).
    Insert,
}

/// Inserts validated jobs in order; see [`Inserted`].
pub(crate) async fn insert(
    conn: &mut PgConnection,
    sql: &Sql,
    jobs: &[NewJob],
    bulk: Bulk,
) -> Result<Inserted, sqlx::Error> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut inserted = false;
    let mut due_queues = BTreeSet::new();
    let mut i = 0;
    while i < jobs.len() {
        if jobs[i].unique.is_some() {
            // One at a time: a later job of the batch may be a duplicate of
            // this one, and must see it.
            let result = insert_unique(conn, sql, &jobs[i]).await?;
            inserted |= !result.duplicate;
            if !result.duplicate && due_now(&jobs[i])? {
                due_queues.insert(jobs[i].queue.clone());
            }
            out.push(result);
            i += 1;
        } else {
            let end = jobs[i..]
                .iter()
                .position(|j| j.unique.is_some())
                .map_or(jobs.len(), |p| i + p);
            let copied = bulk == Bulk::Copy
                && end - i >= copy::MIN_JOBS
                && copy::insert(conn, sql, &jobs[i..end], &mut out).await?;
            if !copied {
                insert_plain(conn, sql, &jobs[i..end], &mut out).await?;
            }
            inserted = true;
            for job in &jobs[i..end] {
                if due_now(job)? && !due_queues.contains(&job.queue) {
                    due_queues.insert(job.queue.clone());
                }
            }
            i = end;
        }
    }
    Ok(Inserted {
        ids: out,
        any: inserted,
        due_queues,
    })
}

/// Whether a new job is due at once: no delay, or a `run_at` not after
/// this machine's clock. (A `run_at` this machine thinks is a moment
/// ahead but the database's clock has passed is not announced; the
/// workers' poll finds it, within their `max_wait`.)
fn due_now(job: &NewJob) -> Result<bool, sqlx::Error> {
    Ok(match first_run(job)? {
        When::AfterMicros(us) => us == 0,
        When::At(at) => at <= chrono::Utc::now(),
    })
}

/// Inserts one job without a unique key and, if it is due now, sends the
/// notification on `channel` with `payload` — one statement (see [`ONE`]).
pub(crate) async fn insert_one(
    conn: &mut PgConnection,
    sql: &Sql,
    job: &NewJob,
    channel: &str,
    payload: &str,
) -> Result<Enqueued, sqlx::Error> {
    let (id,): (i64,) = bind_job(sqlx::query_as(&sql.enqueue_one), job)?
        .bind(channel)
        .bind(payload)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Enqueued {
        id: JobId(id),
        duplicate: false,
    })
}

/// Inserts jobs without unique keys, all in one statement.
async fn insert_plain(
    conn: &mut PgConnection,
    sql: &Sql,
    jobs: &[NewJob],
    out: &mut Vec<Enqueued>,
) -> Result<(), sqlx::Error> {
    let n = jobs.len();
    let mut kinds = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut max_attempts = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    let mut delays = Vec::with_capacity(n);
    let mut timeouts = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    for job in jobs {
        let when = first_run(job)?;
        kinds.push(job.kind.as_str());
        queues.push(job.queue.as_str());
        payloads.push(job.payload.as_str());
        priorities.push(job.priority);
        max_attempts.push(attempts(job)?);
        ats.push(when.at());
        delays.push(when.delay_us());
        timeouts.push(job.timeout.and_then(|t| timeout_ms(t).ok()));
        versions.push(payload_version(job)?);
    }
    let mut ids: Vec<i64> = sqlx::query_scalar(&sql.enqueue_plain)
        .bind(kinds)
        .bind(queues)
        .bind(payloads)
        .bind(priorities)
        .bind(max_attempts)
        .bind(ats)
        .bind(delays)
        .bind(timeouts)
        .bind(versions)
        .fetch_all(&mut *conn)
        .await?;
    if ids.len() != n {
        return Err(decode_error(format!(
            "inserted {} rows, expected {n}",
            ids.len()
        )));
    }
    // RETURNING promises no order; the identity values were drawn in
    // `ORDER BY ord` order, so sorted ids line up with the batch.
    ids.sort_unstable();
    out.extend(ids.into_iter().map(|id| Enqueued {
        id: JobId(id),
        duplicate: false,
    }));
    Ok(())
}

/// Binds a job's columns as [`ONE`] and [`UNIQUE`] take them, `$1` to `$9`:
/// kind, queue, payload, priority, max attempts, `run_at` or delay, timeout,
/// payload version.
fn bind_job<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    job: &'q NewJob,
) -> Result<QueryAs<'q, Postgres, O, PgArguments>, sqlx::Error> {
    let when = first_run(job)?;
    Ok(query
        .bind(job.kind.as_str())
        .bind(job.queue.as_str())
        .bind(job.payload.as_str())
        .bind(job.priority)
        .bind(attempts(job)?)
        .bind(when.at())
        .bind(when.delay_us())
        .bind(job.timeout.and_then(|t| timeout_ms(t).ok()))
        .bind(payload_version(job)?))
}

/// Inserts one job with a unique key, or reports the key's holder.
async fn insert_unique(
    conn: &mut PgConnection,
    sql: &Sql,
    job: &NewJob,
) -> Result<Enqueued, sqlx::Error> {
    let Some((key, scope)) = &job.unique else {
        return Err(decode_error("insert_unique without a key".into()));
    };
    let window = match scope {
        UniqueScope::Window(w) => Some(window_ms(*w).map_err(|e| decode_error(e.to_string()))?),
        UniqueScope::Queued | UniqueScope::Active => None,
    };
    for _ in 0..UNIQUE_TRIES {
        let (id, held): (Option<i64>, String) = bind_job(sqlx::query_as(&sql.enqueue_unique), job)?
            .bind(key.as_str())
            .bind(scope.as_str())
            .bind(window)
            .fetch_one(&mut *conn)
            .await?;
        if let Some(id) = id {
            return Ok(Enqueued {
                id: JobId(id),
                duplicate: false,
            });
        }
        let holder: Option<i64> = sqlx::query_scalar(&sql.unique_holder)
            .bind(held)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(holder) = holder {
            return Ok(Enqueued {
                id: JobId(holder),
                duplicate: true,
            });
        }
    }
    Err(decode_error(format!(
        "unique key `{key}` changed hands {UNIQUE_TRIES} times during one enqueue"
    )))
}

pub(crate) fn first_run(job: &NewJob) -> Result<When, sqlx::Error> {
    clock::first_run(job).map_err(|e| decode_error(e.to_string()))
}

pub(crate) fn attempts(job: &NewJob) -> Result<i32, sqlx::Error> {
    i32::try_from(job.max_attempts)
        .map_err(|_| decode_error(format!("max_attempts {} out of range", job.max_attempts)))
}

/// The payload version as the `integer` column keeps it (validated: 1 to
/// `i32::MAX`).
pub(crate) fn payload_version(job: &NewJob) -> Result<i32, sqlx::Error> {
    i32::try_from(job.payload_version).map_err(|_| {
        decode_error(format!(
            "payload_version {} out of range",
            job.payload_version
        ))
    })
}

pub(crate) fn timeout_ms(timeout: std::time::Duration) -> Result<i64, StoreError> {
    // Milliseconds, as the SQLite store keeps it: a timeout finer than that
    // means nothing to a worker.
    steward_core::store::millis("timeout", timeout)
}

fn window_ms(window: std::time::Duration) -> Result<i64, StoreError> {
    steward_core::store::millis("unique window", window)
}
