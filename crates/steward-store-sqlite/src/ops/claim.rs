//! Claiming due jobs in two steps: the writer marks them running and
//! returns only their leases (one `UPDATE … RETURNING id, lease_token` per
//! queue); a read connection then loads what the worker needs to run them.
//!
//! Why two steps: the single writer is the store's bottleneck, and each
//! column a `RETURNING` clause hands back is copied twice on the writer's
//! thread (into SQLite's returning buffer, then into the driver's row).
//! Returning two integers instead of eleven columns made a claim about a
//! quarter cheaper for the writer (measured with the raw statements); the
//! read costs the same but runs on a reader, in parallel with the writer's
//! next batch. It is safe to read after the commit: everything read is
//! either fixed for the job's life (kind, queue, payload, priority,
//! created_at, timeout) or written only by the holder of the lease just
//! taken (attempt, checkpoint), so no one can change it in between.

use std::collections::HashMap;
use std::fmt::Write as _;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use steward_core::store::{
    ClaimRequest, ClaimedJob, Finish, JobId, Lease, LeaseToken, SUSPECT_RESCUES, unreadable_job,
};

use crate::sql::{clock_cte, duration_col, time_col, u32_col};

/// The claim, on the clock of [`clock_cte`] (`?1` its floor). Two walks of
/// partial indexes in (priority, run_at, id) order, each stopping at its
/// limit: the small suspects index for at most `?6` suspects (`rescues >=
/// 2`: `SUSPECT_RESCUES`, written out because a partial index serves only a
/// query that repeats its condition), then the claim index, which holds
/// only jobs that are not suspects, for the rest of the `?5` (migration
/// 0005: the two split the queued jobs, so neither walk reads the table to
/// test `rescues`). A suspect the worker may take is taken ahead of its
/// place in line; merging the two walks in claim order instead (a union
/// sorted again) cost about 8 % of SQLite's throughput (`steward bench
/// jobs`, docs/performance.md), for a case that almost never arises. The
/// tests are written exactly as the indexes' conditions, which is what lets
/// SQLite use them. The lease token is SQLite's `random()` (a CSPRNG seeded
/// from the OS), fresh per job and per claim. A `queued`-scope unique key
/// is released here: the job is no longer queued.
const CLAIM: &str = concat!(
    clock_cte!(),
    ", suspect(id) AS (
        SELECT id FROM steward_jobs
        WHERE rescues >= 2 AND (state = 'scheduled' OR state = 'available' OR state = 'retryable')
            AND queue = ?4 AND run_at <= (SELECT now FROM clock)
            AND (?7 IS NULL OR kind IN (SELECT value FROM json_each(?7)))
        ORDER BY priority, run_at, id
        LIMIT min(?6, ?5))
    UPDATE steward_jobs
    SET state = 'running', attempt = attempt + 1, attempted_at = (SELECT now FROM clock),
        worker = ?2, lease_token = random(), lease_expires_at = (SELECT now FROM clock) + ?3,
        unique_held = CASE WHEN unique_scope = 'queued' THEN NULL ELSE unique_held END
    WHERE id IN (
        SELECT id FROM suspect
        UNION ALL
        SELECT id FROM (
            SELECT id FROM steward_jobs
            WHERE rescues < 2 AND (state = 'scheduled' OR state = 'available' OR state = 'retryable')
                AND queue = ?4 AND run_at <= (SELECT now FROM clock)
                AND (?7 IS NULL OR kind IN (SELECT value FROM json_each(?7)))
            ORDER BY priority, run_at, id
            LIMIT ?5 - (SELECT count(*) FROM suspect)))
    RETURNING id, lease_token, rescues"
);

/// What a worker needs to run the claimed jobs, by primary key. Read by
/// position (the `col` module below names each column's place): a read
/// by name hashes the name, a dozen times per job on the hot path.
const DETAILS: &str = "SELECT id, kind, queue, payload, attempt, max_attempts, checkpoint,
        timeout_ms, created_at, priority, run_at, rescues, payload_version
    FROM steward_jobs WHERE id IN (SELECT value FROM json_each(?1))";

/// The place of each column in a [`DETAILS`] row.
mod col {
    pub(super) const ID: usize = 0;
    pub(super) const KIND: usize = 1;
    pub(super) const QUEUE: usize = 2;
    pub(super) const PAYLOAD: usize = 3;
    pub(super) const ATTEMPT: usize = 4;
    pub(super) const MAX_ATTEMPTS: usize = 5;
    pub(super) const CHECKPOINT: usize = 6;
    pub(super) const TIMEOUT_MS: usize = 7;
    pub(super) const CREATED_AT: usize = 8;
    pub(super) const PRIORITY: usize = 9;
    pub(super) const RUN_AT: usize = 10;
    pub(super) const RESCUES: usize = 11;
    pub(super) const PAYLOAD_VERSION: usize = 12;
}

/// Marks due jobs of every queue of the request running; returns their
/// leases, in no particular order (see [`details`]).
pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    now: i64,
    request: &ClaimRequest,
    lease_ms: i64,
) -> Result<Vec<Lease>, sqlx::Error> {
    let mut out = Vec::new();
    let mut suspects = request.max_suspects;
    let kinds = request
        .kinds
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    for queue in &request.queues {
        if queue.limit == 0 {
            continue;
        }
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(CLAIM)
            .bind(now)
            .bind(request.worker.as_str())
            .bind(lease_ms)
            .bind(queue.queue.as_str())
            .bind(i64::from(queue.limit))
            .bind(i64::from(suspects))
            .bind(kinds.as_deref())
            .fetch_all(&mut *conn)
            .await?;
        let taken = rows
            .iter()
            .filter(|(_, _, rescues)| *rescues >= i64::from(SUSPECT_RESCUES))
            .count();
        suspects = suspects.saturating_sub(u32::try_from(taken).unwrap_or(u32::MAX));
        out.extend(rows.into_iter().map(|(id, token, _)| Lease {
            id: JobId(id),
            token: LeaseToken(token),
        }));
    }
    Ok(out)
}

/// Loads the claimed jobs, in the contract's order: queues as the request
/// lists them, then (priority, run_at, id) within a queue; and, apart, the
/// outcomes that fail those whose rows cannot be read (see
/// [`unreadable_job`]).
pub(crate) async fn details(
    conn: &mut SqliteConnection,
    request: &ClaimRequest,
    leases: &[Lease],
) -> Result<(Vec<ClaimedJob>, Vec<Finish>), sqlx::Error> {
    if leases.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut ids = String::with_capacity(leases.len() * 8);
    ids.push('[');
    for (n, lease) in leases.iter().enumerate() {
        if n > 0 {
            ids.push(',');
        }
        let _ = write!(ids, "{}", lease.id.0);
    }
    ids.push(']');
    let tokens: HashMap<i64, LeaseToken> = leases.iter().map(|l| (l.id.0, l.token)).collect();
    let rank: HashMap<&str, usize> = request
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| (q.queue.as_str(), i))
        .collect();
    let rows = sqlx::query(DETAILS).bind(ids).fetch_all(&mut *conn).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in &rows {
        let id: i64 = row.try_get(col::ID)?;
        // Every row read was asked for by id, so its token is known.
        let Some(&token) = tokens.get(&id) else {
            continue;
        };
        let lease = Lease {
            id: JobId(id),
            token,
        };
        let read = (|| {
            let priority: i64 = row.try_get(col::PRIORITY)?;
            let run_at: i64 = row.try_get(col::RUN_AT)?;
            let job = decode(row, lease)?;
            let queue = rank.get(job.queue.as_str()).copied().unwrap_or(usize::MAX);
            Ok::<_, sqlx::Error>(((queue, priority, run_at, id), job))
        })();
        match read {
            Ok(job) => jobs.push(job),
            Err(err) => {
                let attempt = u32_col(row, col::ATTEMPT).unwrap_or(0);
                unreadable.push(unreadable_job(lease, attempt, &err.to_string()));
            }
        }
    }
    jobs.sort_by_key(|(key, _)| *key);
    Ok((jobs.into_iter().map(|(_, job)| job).collect(), unreadable))
}

fn decode(row: &SqliteRow, lease: Lease) -> Result<ClaimedJob, sqlx::Error> {
    Ok(ClaimedJob {
        lease,
        kind: row.try_get(col::KIND)?,
        queue: row.try_get(col::QUEUE)?,
        payload: row.try_get(col::PAYLOAD)?,
        payload_version: u32_col(row, col::PAYLOAD_VERSION)?,
        attempt: u32_col(row, col::ATTEMPT)?,
        max_attempts: u32_col(row, col::MAX_ATTEMPTS)?,
        checkpoint: row.try_get(col::CHECKPOINT)?,
        timeout: duration_col(row, col::TIMEOUT_MS)?,
        created_at: time_col(row, col::CREATED_AT)?,
        rescues: u32_col(row, col::RESCUES)?,
    })
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    /// Both walks of the claim search their partial index; neither scans
    /// the table. A condition written differently from its index's (see
    /// migration 0005) makes SQLite scan every job instead, on every claim.
    #[tokio::test]
    async fn the_claim_searches_both_partial_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("jobs.db");
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .expect("open");
        crate::schema::migrate(&mut conn, "jobs.db")
            .await
            .expect("migrate");
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {CLAIM}"))
                .bind(0_i64)
                .bind("w")
                .bind(1000_i64)
                .bind("default")
                .bind(16_i64)
                .bind(1_i64)
                .bind(r#"["noop"]"#)
                .fetch_all(&mut conn)
                .await
                .expect("plan");
        let steps: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        for index in ["steward_jobs_suspects", "steward_jobs_claim"] {
            assert!(
                steps
                    .iter()
                    .any(|s| s.starts_with("SEARCH steward_jobs USING INDEX ") && s.contains(index)),
                "the claim does not search {index}: {steps:#?}"
            );
        }
        assert!(
            !steps.iter().any(|s| s.starts_with("SCAN steward_jobs")),
            "the claim scans the table: {steps:#?}"
        );
        // Both walks read their index in the claim's order; a sort would
        // mean reading every due job of the queue on every claim.
        assert!(
            !steps.iter().any(|s| s.starts_with("USE TEMP B-TREE")),
            "the claim sorts the queue: {steps:#?}"
        );
    }
}
