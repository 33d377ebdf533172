//! Claiming due jobs: one `UPDATE … RETURNING` per queue, which picks,
//! marks running and reads the jobs in a single statement.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use steward_core::store::{ClaimRequest, ClaimedJob, JobId, Lease, LeaseToken};

use crate::sql::{add_ms, duration_col, from_ms, u32_col};

/// The claim. The inner SELECT walks the partial claim index in
/// (priority, run_at, id) order and stops at the limit. The lease token is
/// SQLite's `random()` (a CSPRNG seeded from the OS), fresh per job and per
/// claim. A `queued`-scope unique key is released here: the job is no
/// longer queued.
const CLAIM: &str = "UPDATE steward_jobs
    SET state = 'running', attempt = attempt + 1, attempted_at = ?1, worker = ?2,
        lease_token = random(), lease_expires_at = ?3,
        unique_held = CASE WHEN unique_scope = 'queued' THEN NULL ELSE unique_held END
    WHERE id IN (
        SELECT id FROM steward_jobs
        WHERE state IN ('scheduled', 'available', 'retryable') AND queue = ?4 AND run_at <= ?1
        ORDER BY priority, run_at, id
        LIMIT ?5)
    RETURNING id, lease_token, kind, queue, payload, attempt, max_attempts, checkpoint,
        timeout_ms, created_at, priority, run_at";

/// Claims for every queue of the request, in the order given.
pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    now: i64,
    request: &ClaimRequest,
    lease_ms: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    let expires = add_ms(now, lease_ms);
    let mut out = Vec::new();
    for queue in &request.queues {
        if queue.limit == 0 {
            continue;
        }
        let rows = sqlx::query(CLAIM)
            .bind(now)
            .bind(request.worker.as_str())
            .bind(expires)
            .bind(queue.queue.as_str())
            .bind(i64::from(queue.limit))
            .fetch_all(&mut *conn)
            .await?;
        // RETURNING yields rows in no promised order; the contract's order is
        // (priority, run_at, id) within a queue.
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let priority: i64 = row.try_get("priority")?;
            let run_at: i64 = row.try_get("run_at")?;
            let job = decode(row)?;
            claimed.push(((priority, run_at, job.lease.id), job));
        }
        claimed.sort_by_key(|(key, _)| *key);
        out.extend(claimed.into_iter().map(|(_, job)| job));
    }
    Ok(out)
}

fn decode(row: &SqliteRow) -> Result<ClaimedJob, sqlx::Error> {
    Ok(ClaimedJob {
        lease: Lease {
            id: JobId(row.try_get("id")?),
            token: LeaseToken(row.try_get("lease_token")?),
        },
        kind: row.try_get("kind")?,
        queue: row.try_get("queue")?,
        payload: row.try_get("payload")?,
        attempt: u32_col(row, "attempt")?,
        max_attempts: u32_col(row, "max_attempts")?,
        checkpoint: row.try_get("checkpoint")?,
        timeout: duration_col(row, "timeout_ms")?,
        created_at: from_ms(row.try_get("created_at")?)?,
    })
}
