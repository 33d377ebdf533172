//! Claiming due jobs: one statement per queue that picks, locks, marks
//! running and reads the jobs.
//!
//! Its plan, with 200,000 completed and 5,000 available jobs in the table
//! (`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)`, PostgreSQL 15, limit 100):
//!
//! ```text
//! Update on jobs j (actual rows=100 loops=1)
//!   CTE picked
//!     ->  Limit (actual rows=100 loops=1)
//!           ->  LockRows (actual rows=100 loops=1)
//!                 ->  Index Scan using jobs_claim on jobs (actual rows=100 loops=1)
//!                       Index Cond: ((queue = 'default'::text) AND (run_at <= now()))
//!                       Filter: (state = ANY ('{scheduled,available,retryable}'::text[]))
//!   ->  Nested Loop (actual rows=100 loops=1)
//!         ->  CTE Scan on picked (actual rows=100 loops=1)
//!         ->  Index Scan using jobs_pkey on jobs j (actual rows=1 loops=100)
//!               Index Cond: (id = picked.id)
//! ```
//!
//! The partial index hands rows over already in claim order (no sort) and
//! the scan stops at the LIMIT; completed rows are not in the index at all.
//! Jobs scheduled for later but of a lower priority value are stepped over
//! inside the index (`run_at` is checked there), never fetched.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use steward_core::store::{
    ClaimRequest, ClaimedJob, Finish, JobId, Lease, LeaseToken, QueueClaim, SUSPECT_RESCUES,
    unreadable_job,
};

use super::Sql;
use crate::ops::columns::{duration_col, time_col, u32_col};
use crate::sql::lease_expiry;

/// The claim. Two CTEs walk partial indexes in (priority, run_at, id) order,
/// each stopping at its LIMIT: `jobs_suspects` for at most `$5` suspects
/// (`rescues >= 2`: `SUSPECT_RESCUES`), then `jobs_claim` for the rest of
/// the `$2` (jobs that are not suspects); a suspect the worker may take is
/// taken ahead of its place in line rather than both walks being merged and
/// sorted again (as in SQLite, a cost on every claim for a case that almost
/// never arises). `$6` are the kinds the worker runs (`NULL`: any). `FOR
/// UPDATE SKIP LOCKED` steps
/// over rows another claim has locked, so concurrent claims never wait for
/// each other nor return the same job. The lease token is 63 random bits
/// from two calls of `random()` (each backend's generator is seeded from a
/// strong source when it starts), fresh per job and claim. A fence against
/// stale workers, not a secret (whoever reaches the database can write the
/// row anyway): `gen_random_uuid()` and the text-to-bits cast it needed cost
/// 2.5 µs a row, a fifth of a 256-job claim's server time (`EXPLAIN
/// ANALYZE`, idle server). A `queued`-scope unique key is released here:
/// the job is no longer queued.
///
/// The claim commits asynchronously (`synchronous_commit = off` for its own
/// transaction only, set by the `async_commit` CTE): it does not wait for
/// the WAL flush, which is most of an idle claim's time on a real disk.
/// Safe for at-least-once: a claim lost in a server crash leaves the job as
/// it was before (queued, attempt not counted), so it simply runs again, and
/// the old lease token no longer matches anything, so the first worker's
/// late writes are refused by the fence as after a rescue. Any later
/// durable commit (a completion) flushes the WAL up to and including it.
pub(crate) const CLAIM: &str = concat!(
    "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
     suspects AS (
         SELECT id FROM {schema}.jobs
         WHERE state IN ('scheduled', 'available', 'retryable') AND rescues >= 2 AND queue = $1
             AND run_at <= now() AND ($6::text[] IS NULL OR kind = ANY($6::text[]))
         ORDER BY priority, run_at, id
         LIMIT least($5, $2)
         FOR UPDATE SKIP LOCKED),
     fresh AS (
         SELECT id FROM {schema}.jobs
         WHERE state IN ('scheduled', 'available', 'retryable') AND rescues < 2 AND queue = $1
             AND run_at <= now() AND ($6::text[] IS NULL OR kind = ANY($6::text[]))
         ORDER BY priority, run_at, id
         LIMIT $2 - (SELECT count(*) FROM suspects)
         FOR UPDATE SKIP LOCKED),
     picked AS (SELECT id FROM suspects UNION ALL SELECT id FROM fresh)
     UPDATE {schema}.jobs AS j
     SET state = 'running', attempt = j.attempt + 1, attempted_at = now(), worker = $3,
         lease_token = (floor(random() * 4294967296)::bigint << 31)
             # floor(random() * 2147483648)::bigint,
         lease_expires_at = ",
    lease_expiry!("$4::bigint"),
    ",
         unique_held = CASE WHEN j.unique_scope = 'queued' THEN NULL ELSE j.unique_held END
     FROM picked, async_commit
     WHERE j.id = picked.id
     RETURNING j.id, j.lease_token, j.kind, j.queue, j.payload::text AS payload, j.attempt,
         j.max_attempts, j.checkpoint::text AS checkpoint, j.timeout_ms, j.created_at,
         j.priority, j.run_at, j.rescues, j.payload_version"
);

/// What one queue's claim took: the jobs to run, and the jobs whose rows
/// could not be read, as the outcomes that fail them (see
/// [`unreadable_job`]).
#[derive(Default)]
pub(crate) struct Claimed {
    pub(crate) jobs: Vec<ClaimedJob>,
    pub(crate) unreadable: Vec<Finish>,
}

/// Claims up to `limit` jobs of one queue, in (priority, run_at, id) order,
/// at most `suspects` of them rescued ones (the count is lowered by those
/// taken).
pub(crate) async fn claim_queue(
    conn: &mut PgConnection,
    sql: &Sql,
    request: &ClaimRequest,
    lease_us: i64,
    queue: &QueueClaim,
    suspects: &mut u32,
    out: &mut Claimed,
) -> Result<usize, sqlx::Error> {
    let rows = sqlx::query(&sql.claim)
        .bind(queue.queue.as_str())
        .bind(i64::from(queue.limit))
        .bind(request.worker.as_str())
        .bind(lease_us)
        .bind(i64::from(*suspects))
        .bind(request.kinds.as_deref())
        .fetch_all(&mut *conn)
        .await?;
    // RETURNING yields rows in no promised order; the contract's order is
    // (priority, run_at, id) within a queue.
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        // Without its id and token a row cannot even be failed: that one
        // fails the claim (the transaction rolls back; nothing is held).
        let lease = Lease {
            id: JobId(row.try_get("id")?),
            token: LeaseToken(row.try_get("lease_token")?),
        };
        let read = (|| {
            let priority: i16 = row.try_get("priority")?;
            let run_at = time_col(row, "run_at")?;
            Ok::<_, sqlx::Error>(((priority, run_at, lease.id), decode(row, lease)?))
        })();
        match read {
            Ok(job) => claimed.push(job),
            Err(err) => {
                let attempt = u32_col(row, "attempt").unwrap_or(0);
                out.unreadable
                    .push(unreadable_job(lease, attempt, &err.to_string()));
            }
        }
    }
    let taken = claimed
        .iter()
        .filter(|(_, job)| job.rescues >= SUSPECT_RESCUES)
        .count();
    *suspects = suspects.saturating_sub(u32::try_from(taken).unwrap_or(u32::MAX));
    claimed.sort_by_key(|(key, _)| *key);
    out.jobs.extend(claimed.into_iter().map(|(_, job)| job));
    Ok(rows.len())
}

fn decode(row: &PgRow, lease: Lease) -> Result<ClaimedJob, sqlx::Error> {
    Ok(ClaimedJob {
        lease,
        kind: row.try_get("kind")?,
        queue: row.try_get("queue")?,
        payload: row.try_get("payload")?,
        payload_version: u32_col(row, "payload_version")?,
        attempt: u32_col(row, "attempt")?,
        max_attempts: u32_col(row, "max_attempts")?,
        checkpoint: row.try_get("checkpoint")?,
        timeout: duration_col(row, "timeout_ms")?,
        created_at: time_col(row, "created_at")?,
        rescues: u32_col(row, "rescues")?,
    })
}
