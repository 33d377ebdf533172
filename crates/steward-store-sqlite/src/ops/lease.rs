//! Writes about running attempts, all fenced on id + lease token + state
//! `running`: heartbeat, finish, release, checkpoint.
//!
//! A batch is passed to SQLite as one JSON array and applied by one
//! `UPDATE … FROM json_each(?)` per outcome kind, which looks each job up by
//! its primary key: a thousand completions cost one statement, not a
//! thousand. `RETURNING id` tells which items matched (were applied).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sqlx::SqliteConnection;
use steward_core::store::batch::{OutcomeKind as Kind, rounds_by_job};
use steward_core::store::{CANCELLED_BY_OPERATOR, Finish, FinishOutcome, HeartbeatResult, Lease};

use crate::sql::{clock_cte, later_ms, rfc3339_ms};

/// The fence every statement here shares.
macro_rules! fenced {
    ($items:literal, $set:expr) => {
        concat!(
            "UPDATE steward_jobs AS j SET ",
            $set,
            " FROM (SELECT ",
            $items,
            " FROM json_each(?1)) AS f
            WHERE j.id = f.id AND j.lease_token = f.token AND j.state = 'running'
            RETURNING id"
        )
    };
}

/// Clearing the lease after an attempt ends; `rescues = 0` because the
/// attempt ended normally (the count is of rescues *in a row*).
macro_rules! end_attempt {
    () => {
        "lease_token = NULL, lease_expires_at = NULL, worker = NULL, rescues = 0"
    };
}

/// Releasing a queued/active unique key when the job reaches a final
/// state; a window's key is held until the job is pruned.
macro_rules! release_key {
    () => {
        "unique_held = CASE WHEN j.unique_scope = 'window' THEN j.unique_held ELSE NULL END"
    };
}

/// Each item carries its lease length; the expiry is on the clock of
/// [`clock_cte`] (`?1` its floor), read once the write lock is held.
const HEARTBEAT: &str = concat!(
    clock_cte!(),
    " UPDATE steward_jobs AS j SET lease_expires_at = (SELECT now FROM clock) + f.lease_ms
    FROM (SELECT value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS lease_ms
          FROM json_each(?2)) AS f
    WHERE j.id = f.id AND j.lease_token = f.token AND j.state = 'running'
    RETURNING id, lease_token, cancel_requested"
);

const COMPLETE: &str = fenced!(
    "value ->> 0 AS id, value ->> 1 AS token",
    concat!(
        "state = 'completed', finished_at = ?2, ",
        end_attempt!(),
        ", ",
        release_key!()
    )
);

// Retry and snooze times arrive as absolute times already: `push_item` adds
// each delay to the transaction's `now` (the store's clock), saturating.
const FAIL_RETRY: &str = fenced!(
    "value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS run_at, value -> 3 AS error",
    concat!(
        "state = 'retryable', run_at = f.run_at, ",
        "errors = json_insert(j.errors, '$[#]', json(f.error)), ",
        end_attempt!()
    )
);

const FAIL_DEAD: &str = fenced!(
    "value ->> 0 AS id, value ->> 1 AS token, value -> 2 AS error",
    concat!(
        "state = 'dead', finished_at = ?2, ",
        "errors = json_insert(j.errors, '$[#]', json(f.error)), ",
        end_attempt!(),
        ", ",
        release_key!()
    )
);

// A snooze does not use up an attempt: the claim's `attempt + 1` is undone.
const SNOOZE: &str = fenced!(
    "value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS until",
    concat!(
        "state = CASE WHEN f.until <= ?2 THEN 'available' ELSE 'scheduled' END, ",
        "run_at = f.until, attempt = j.attempt - 1, ",
        end_attempt!()
    )
);

const CANCEL: &str = fenced!(
    "value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS reason",
    concat!(
        "state = 'cancelled', finished_at = ?2, ",
        "errors = json_insert(j.errors, '$[#]', json_object('attempt', j.attempt, 'at', ?3, ",
        "'kind', 'cancelled', 'message', f.reason)), ",
        end_attempt!(),
        ", ",
        release_key!()
    )
);

// Interrupted, not failed: the attempt is not counted, and it runs again now.
// `rescues` is left alone: a release is neither a normal finish nor a rescue.
const RELEASE: &str = fenced!(
    "value ->> 0 AS id, value ->> 1 AS token",
    "state = 'available', run_at = ?2, attempt = j.attempt - 1, interrupted = j.interrupted + 1,
     lease_token = NULL, lease_expires_at = NULL, worker = NULL"
);

/// The rule that a requested cancel is never lost: jobs of `?1` (a JSON
/// array of ids) that an operator asked to cancel and that an attempt's end
/// just put back in line (retry, snooze, release, rescue) are cancelled
/// instead, as their worker would have done had it seen the request.
pub(crate) const SETTLE_CANCELS: &str = concat!(
    "UPDATE steward_jobs AS j SET state = 'cancelled', finished_at = ?2, ",
    "errors = json_insert(j.errors, '$[#]', json_object('attempt', j.attempt, 'at', ?3, ",
    "'kind', 'cancelled', 'message', ?4)), ",
    release_key!(),
    " WHERE j.id IN (SELECT value FROM json_each(?1)) AND j.cancel_requested = 1
        AND j.state IN ('scheduled', 'available', 'retryable')
    RETURNING id"
);

/// Applies [`SETTLE_CANCELS`] to `ids`; returns how many it cancelled.
pub(crate) async fn settle_cancels(
    conn: &mut SqliteConnection,
    now: i64,
    ids: &[i64],
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let json = serde_json::to_string(ids).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let done = sqlx::query_scalar::<_, i64>(SETTLE_CANCELS)
        .bind(json)
        .bind(now)
        .bind(rfc3339_ms(now))
        .bind(CANCELLED_BY_OPERATOR)
        .fetch_all(&mut *conn)
        .await?;
    Ok(done.len() as u64)
}

const CHECKPOINT: &str = "UPDATE steward_jobs SET checkpoint = ?3
    WHERE id = ?1 AND lease_token = ?2 AND state = 'running'";

/// Extends leases, each by its own length in milliseconds, from the store's
/// clock (`now` its floor). One statement for the whole batch: a heartbeat
/// is idempotent, so repeated items need no special care.
pub(crate) async fn heartbeat(
    conn: &mut SqliteConnection,
    now: i64,
    items: &[(Lease, i64)],
) -> Result<Vec<HeartbeatResult>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut json = String::with_capacity(items.len() * 48);
    json.push('[');
    for (i, (lease, lease_ms)) in items.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(json, "[{},{},{}]", lease.id.0, lease.token.0, lease_ms);
    }
    json.push(']');
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(HEARTBEAT)
        .bind(now)
        .bind(json)
        .fetch_all(&mut *conn)
        .await?;
    let held: HashMap<(i64, i64), bool> = rows
        .into_iter()
        .map(|(id, token, cancel)| ((id, token), cancel != 0))
        .collect();
    Ok(items
        .iter()
        .map(|(lease, _)| match held.get(&(lease.id.0, lease.token.0)) {
            Some(true) => HeartbeatResult::CancelRequested,
            Some(false) => HeartbeatResult::Extended,
            None => HeartbeatResult::Lost,
        })
        .collect())
}

/// The statement for one kind of outcome.
fn statement(kind: Kind) -> &'static str {
    match kind {
        Kind::Complete => COMPLETE,
        Kind::FailRetry => FAIL_RETRY,
        Kind::FailDead => FAIL_DEAD,
        Kind::Snooze => SNOOZE,
        Kind::Cancel => CANCEL,
    }
}

/// One item of a finish statement's JSON array; delays become times on
/// the store's clock (`now`).
fn push_item(json: &mut String, now: i64, finish: &Finish) -> Result<(), sqlx::Error> {
    let Lease { id, token } = finish.lease;
    let _ = write!(json, "[{},{}", id.0, token.0);
    match &finish.outcome {
        FinishOutcome::Completed => {}
        FinishOutcome::Failed { error, retry_in } => {
            if let Some(delay) = retry_in {
                let _ = write!(json, ",{}", later_ms(now, *delay));
            }
            let error = serde_json::to_string(error).map_err(|e| sqlx::Error::Encode(e.into()))?;
            let _ = write!(json, ",{error}");
        }
        FinishOutcome::Snoozed { delay } => {
            let _ = write!(json, ",{}", later_ms(now, *delay));
        }
        FinishOutcome::Cancelled { reason } => {
            let reason =
                serde_json::to_string(reason).map_err(|e| sqlx::Error::Encode(e.into()))?;
            let _ = write!(json, ",{reason}");
        }
    }
    json.push(']');
    Ok(())
}

/// Records how attempts ended. Returns, per item, whether it was applied,
/// and whether any applied item made a job due now (a retry or snooze whose
/// time has come), the cue to wake workers.
pub(crate) async fn finish(
    conn: &mut SqliteConnection,
    now: i64,
    items: &[&Finish],
) -> Result<(Vec<bool>, bool), sqlx::Error> {
    let mut applied = vec![false; items.len()];
    let mut wake = false;
    let now_text = rfc3339_ms(now);
    for round in rounds_by_job(items.iter().map(|f| f.lease.id.0)) {
        for kind in Kind::ALL {
            let group: Vec<usize> = round
                .iter()
                .copied()
                .filter(|&i| Kind::of(&items[i].outcome) == kind)
                .collect();
            if group.is_empty() {
                continue;
            }
            let mut json = String::with_capacity(group.len() * 48);
            json.push('[');
            for (n, &i) in group.iter().enumerate() {
                if n > 0 {
                    json.push(',');
                }
                push_item(&mut json, now, items[i])?;
            }
            json.push(']');
            let mut query = sqlx::query_scalar::<_, i64>(statement(kind)).bind(json);
            if kind != Kind::FailRetry {
                query = query.bind(now);
            }
            if kind == Kind::Cancel {
                query = query.bind(now_text.as_str());
            }
            let done: HashSet<i64> = query.fetch_all(&mut *conn).await?.into_iter().collect();
            for &i in &group {
                // Within a round each id appears once, so a returned id is
                // this very item.
                if done.contains(&items[i].lease.id.0) {
                    applied[i] = true;
                    wake |= makes_due(&items[i].outcome);
                }
            }
            if kind.requeues() {
                let requeued: Vec<i64> = done.into_iter().collect();
                settle_cancels(conn, now, &requeued).await?;
            }
        }
    }
    Ok((applied, wake))
}

/// True if the outcome puts the job back in line, due now.
fn makes_due(outcome: &FinishOutcome) -> bool {
    match outcome {
        FinishOutcome::Failed {
            retry_in: Some(delay),
            ..
        }
        | FinishOutcome::Snoozed { delay } => delay.is_zero(),
        _ => false,
    }
}

/// Puts running attempts back as available now. Returns, per item, whether
/// it was released.
pub(crate) async fn release(
    conn: &mut SqliteConnection,
    now: i64,
    leases: &[Lease],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut released = vec![false; leases.len()];
    for round in rounds_by_job(leases.iter().map(|l| l.id.0)) {
        let mut json = String::with_capacity(round.len() * 40);
        json.push('[');
        for (n, &i) in round.iter().enumerate() {
            if n > 0 {
                json.push(',');
            }
            let _ = write!(json, "[{},{}]", leases[i].id.0, leases[i].token.0);
        }
        json.push(']');
        let done: HashSet<i64> = sqlx::query_scalar::<_, i64>(RELEASE)
            .bind(json)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        for &i in &round {
            released[i] = done.contains(&leases[i].id.0);
        }
        let requeued: Vec<i64> = done.into_iter().collect();
        settle_cancels(conn, now, &requeued).await?;
    }
    Ok(released)
}

/// Saves a checkpoint; false if the lease is gone.
pub(crate) async fn checkpoint(
    conn: &mut SqliteConnection,
    lease: Lease,
    state: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(CHECKPOINT)
        .bind(lease.id.0)
        .bind(lease.token.0)
        .bind(state)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
