//! Writes about running attempts, all fenced on id + lease token + state
//! `running`: heartbeat, finish, release, checkpoint.
//!
//! A batch travels as arrays, one per column, and one
//! `UPDATE … FROM unnest($1::bigint[], $2::bigint[], …)` per outcome kind
//! applies it, looking each job up by its primary key: a thousand
//! completions cost one statement, not a thousand. `RETURNING` tells which
//! items matched (were applied).

use std::collections::{BTreeSet, HashMap};

use sqlx::PgConnection;
use steward_core::store::batch::{OutcomeKind as Kind, one_statement, rounds_by_job};
use steward_core::store::{CANCELLED_BY_OPERATOR, Finish, HeartbeatResult, Lease};

use super::Sql;
use crate::clock::{self, Outcome};
use crate::error::decode_error;
use crate::sql::{after_delay, lease_expiry, now_text};

/// The fence every finish statement shares: `$items` names the columns of
/// `unnest`, `$set` the changes. Returns each applied id, and its queue if
/// the job is now due (a retry or snooze whose time has come, a release:
/// the cue to wake workers), else `NULL`.
macro_rules! fenced {
    ($from:expr, $set:expr) => {
        concat!(
            "UPDATE {schema}.jobs AS j SET ",
            $set,
            " FROM ",
            $from,
            " WHERE j.id = f.id AND j.lease_token = f.token AND j.state = 'running'
             RETURNING j.id, CASE WHEN j.state IN ('available', 'retryable') AND j.run_at <= now()
                 THEN j.queue END AS due_queue"
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

/// Items whose new `run_at` is an absolute time or a delay from `now()`.
macro_rules! timed_items {
    ($extra_cols:literal, $extra_types:literal) => {
        concat!(
            "(SELECT u.id, u.token, coalesce(u.at, ",
            after_delay!("u.delay_us"),
            ") AS run_at",
            $extra_cols,
            " FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[]",
            $extra_types,
            ") AS u(id, token, at, delay_us",
            $extra_cols,
            ")) AS f"
        )
    };
}

/// Locks a finish batch's rows in id order before its statements run, when
/// it takes more than one (several outcome kinds, or one job twice): one
/// after the other, the statements lock the batch's rows out of order, and
/// a heartbeat of the same jobs racing them could hold a row the finish
/// needs while waiting for one the finish holds (SQLSTATE 40P01; the
/// completer retries after 50 ms, but the deadlock check alone waits
/// `deadlock_timeout`, 1 s by default). `tests/finish_order.rs` deadlocked
/// in most of its rounds without this and the heartbeat's own ordered lock.
pub(crate) const LOCK_IN_ORDER: &str = "SELECT id FROM {schema}.jobs
     WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE";

/// Extends leases. Its rows are locked in id order first (`locked`): the
/// `UPDATE` alone locks them in whatever order its join produces (a hash
/// join may follow the table's heap order), and every batch racing it must
/// agree on one order. Only locked rows are updated, and the `CTE` locks in
/// `ORDER BY id` order however the plan pulls from it, so the statement as
/// a whole takes its locks in id order.
pub(crate) const HEARTBEAT: &str = concat!(
    "WITH locked AS (
         SELECT id FROM {schema}.jobs WHERE id = ANY($1::bigint[])
         ORDER BY id FOR NO KEY UPDATE)
     UPDATE {schema}.jobs AS j SET lease_expires_at = ",
    lease_expiry!("$3::bigint"),
    " FROM unnest($1::bigint[], $2::bigint[]) AS f(id, token), locked
     WHERE locked.id = f.id AND j.id = f.id AND j.lease_token = f.token
         AND j.state = 'running'
     RETURNING j.id, j.lease_token, j.cancel_requested"
);

pub(crate) const COMPLETE: &str = fenced!(
    "unnest($1::bigint[], $2::bigint[]) AS f(id, token)",
    concat!(
        "state = 'completed', finished_at = now(), ",
        end_attempt!(),
        ", ",
        release_key!()
    )
);

pub(crate) const FAIL_RETRY: &str = fenced!(
    timed_items!(", error", ", $5::text[]"),
    concat!(
        "state = 'retryable', run_at = f.run_at, ",
        "errors = j.errors || jsonb_build_array(f.error::jsonb), ",
        end_attempt!()
    )
);

pub(crate) const FAIL_DEAD: &str = fenced!(
    "unnest($1::bigint[], $2::bigint[], $3::text[]) AS f(id, token, error)",
    concat!(
        "state = 'dead', finished_at = now(), ",
        "errors = j.errors || jsonb_build_array(f.error::jsonb), ",
        end_attempt!(),
        ", ",
        release_key!()
    )
);

// A snooze does not use up an attempt: the claim's `attempt + 1` is undone.
pub(crate) const SNOOZE: &str = fenced!(
    timed_items!("", ""),
    concat!(
        "state = CASE WHEN f.run_at <= now() THEN 'available' ELSE 'scheduled' END, ",
        "run_at = f.run_at, attempt = j.attempt - 1, ",
        end_attempt!()
    )
);

pub(crate) const CANCEL: &str = fenced!(
    "unnest($1::bigint[], $2::bigint[], $3::text[]) AS f(id, token, reason)",
    concat!(
        "state = 'cancelled', finished_at = now(), ",
        "errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, ",
        "'at', ",
        now_text!(),
        ", 'kind', 'cancelled', 'message', f.reason)), ",
        end_attempt!(),
        ", ",
        release_key!()
    )
);

// Interrupted, not failed: the attempt is not counted, and it runs again now.
// `rescues` is left alone: a release is neither a normal finish nor a rescue.
pub(crate) const RELEASE: &str = fenced!(
    "unnest($1::bigint[], $2::bigint[]) AS f(id, token)",
    "state = 'available', run_at = now(), attempt = j.attempt - 1,
     interrupted = j.interrupted + 1, lease_token = NULL, lease_expires_at = NULL, worker = NULL"
);

/// The rule that a requested cancel is never lost: of the jobs `$1` that an
/// attempt's end just put back in line (retry, snooze, release, rescue),
/// those an operator asked to cancel are cancelled instead, as their worker
/// would have done had it seen the request. `$2` is the error's message.
/// Run in the same transaction as the statement that put them back.
pub(crate) const SETTLE_CANCELS: &str = concat!(
    "UPDATE {schema}.jobs AS j SET state = 'cancelled', finished_at = now(),
        errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'at', ",
    now_text!(),
    ", 'kind', 'cancelled', 'message', $2::text)), ",
    release_key!(),
    " WHERE j.id = ANY($1::bigint[]) AND j.cancel_requested
        AND j.state IN ('scheduled', 'available', 'retryable')"
);

/// Applies [`SETTLE_CANCELS`] to `ids`; returns how many it cancelled.
pub(crate) async fn settle_cancels(
    conn: &mut PgConnection,
    sql: &Sql,
    ids: Vec<i64>,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(&sql.settle_cancels)
        .bind(ids)
        .bind(CANCELLED_BY_OPERATOR)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

pub(crate) const CHECKPOINT: &str = "UPDATE {schema}.jobs SET checkpoint = $3::jsonb
    WHERE id = $1 AND lease_token = $2 AND state = 'running'";

/// Extends leases by `lease_us` from now. One statement for the whole batch:
/// a heartbeat is idempotent, so repeated items need no special care.
pub(crate) async fn heartbeat(
    conn: &mut PgConnection,
    sql: &Sql,
    leases: &[Lease],
    lease_us: i64,
) -> Result<Vec<HeartbeatResult>, sqlx::Error> {
    // In id order, like every batched write here: two batches that touch
    // the same jobs (a heartbeat and a completion racing) then lock their
    // rows in one order and cannot deadlock each other.
    let mut sorted = leases.to_vec();
    sorted.sort_unstable_by_key(|l| l.id.0);
    let (ids, tokens) = columns(sorted.into_iter());
    let rows: Vec<(i64, i64, bool)> = sqlx::query_as(&sql.heartbeat)
        .bind(ids)
        .bind(tokens)
        .bind(lease_us)
        .fetch_all(&mut *conn)
        .await?;
    let held: HashMap<(i64, i64), bool> = rows
        .into_iter()
        .map(|(id, token, cancel)| ((id, token), cancel))
        .collect();
    Ok(leases
        .iter()
        .map(|lease| match held.get(&(lease.id.0, lease.token.0)) {
            Some(true) => HeartbeatResult::CancelRequested,
            Some(false) => HeartbeatResult::Extended,
            None => HeartbeatResult::Lost,
        })
        .collect())
}

/// The statement for one kind of outcome.
fn statement(kind: Kind, sql: &Sql) -> &str {
    match kind {
        Kind::Complete => &sql.complete,
        Kind::FailRetry => &sql.fail_retry,
        Kind::FailDead => &sql.fail_dead,
        Kind::Snooze => &sql.snooze,
        Kind::Cancel => &sql.cancel_attempt,
    }
}

/// One finish statement's arrays (only those its kind uses are bound).
#[derive(Default)]
struct Columns {
    ids: Vec<i64>,
    tokens: Vec<i64>,
    ats: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    delays: Vec<Option<i64>>,
    texts: Vec<String>,
}

impl Columns {
    fn push(&mut self, finish: &Finish) -> Result<(), sqlx::Error> {
        self.ids.push(finish.lease.id.0);
        self.tokens.push(finish.lease.token.0);
        match clock::outcome(&finish.outcome) {
            Outcome::Complete => {}
            Outcome::Retry { error, when } => {
                self.ats.push(when.at());
                self.delays.push(when.delay_us());
                self.texts.push(json(error)?);
            }
            Outcome::Dead { error } => self.texts.push(json(error)?),
            Outcome::Snooze { when } => {
                self.ats.push(when.at());
                self.delays.push(when.delay_us());
            }
            Outcome::Cancel { reason } => self.texts.push(reason.to_string()),
        }
        Ok(())
    }
}

fn json(error: &steward_core::store::AttemptError) -> Result<String, sqlx::Error> {
    serde_json::to_string(error)
        .map_err(|e| decode_error(format!("encoding an attempt error: {e}")))
}

/// Records how attempts ended. Returns, per item, whether it was applied,
/// and the queues of the jobs it made due now (the cue to wake workers).
pub(crate) async fn finish(
    conn: &mut PgConnection,
    sql: &Sql,
    items: &[Finish],
) -> Result<(Vec<bool>, BTreeSet<String>), sqlx::Error> {
    let mut applied = vec![false; items.len()];
    let mut due_queues = BTreeSet::new();
    if !one_statement(items) {
        let mut ids: Vec<i64> = items.iter().map(|f| f.lease.id.0).collect();
        ids.sort_unstable();
        ids.dedup();
        sqlx::query(&sql.lock_in_order)
            .bind(ids)
            .execute(&mut *conn)
            .await?;
    }
    for round in rounds_by_job(items.iter().map(|f| f.lease.id.0)) {
        for kind in Kind::ALL {
            let mut group: Vec<usize> = round
                .iter()
                .copied()
                .filter(|&i| Kind::of(&items[i].outcome) == kind)
                .collect();
            if group.is_empty() {
                continue;
            }
            // Rows locked in id order (see `heartbeat`).
            group.sort_unstable_by_key(|&i| items[i].lease.id.0);
            let mut cols = Columns::default();
            for &i in &group {
                cols.push(&items[i])?;
            }
            let query = sqlx::query_as::<_, (i64, Option<String>)>(statement(kind, sql))
                .bind(cols.ids)
                .bind(cols.tokens);
            let query = match kind {
                Kind::Complete => query,
                Kind::FailDead | Kind::Cancel => query.bind(cols.texts),
                Kind::Snooze => query.bind(cols.ats).bind(cols.delays),
                Kind::FailRetry => query.bind(cols.ats).bind(cols.delays).bind(cols.texts),
            };
            let done: HashMap<i64, Option<String>> =
                query.fetch_all(&mut *conn).await?.into_iter().collect();
            for &i in &group {
                // Within a round each id appears once, so a returned id is
                // this very item.
                if let Some(due) = done.get(&items[i].lease.id.0) {
                    applied[i] = true;
                    if let Some(queue) = due {
                        due_queues.insert(queue.clone());
                    }
                }
            }
            if kind.requeues() {
                settle_cancels(conn, sql, done.into_keys().collect()).await?;
            }
        }
    }
    Ok((applied, due_queues))
}

/// Puts running attempts back as available now; returns how many, and
/// their queues.
pub(crate) async fn release(
    conn: &mut PgConnection,
    sql: &Sql,
    leases: &[Lease],
) -> Result<(u64, BTreeSet<String>), sqlx::Error> {
    let mut released = 0;
    let mut queues = BTreeSet::new();
    for round in rounds_by_job(leases.iter().map(|l| l.id.0)) {
        let (ids, tokens) = columns(round.iter().map(|&i| leases[i]));
        let done: Vec<(i64, Option<String>)> = sqlx::query_as(&sql.release)
            .bind(ids)
            .bind(tokens)
            .fetch_all(&mut *conn)
            .await?;
        released += done.len() as u64;
        settle_cancels(conn, sql, done.iter().map(|(id, _)| *id).collect()).await?;
        queues.extend(done.into_iter().filter_map(|(_, queue)| queue));
    }
    Ok((released, queues))
}

/// Saves a checkpoint; false if the lease is gone.
pub(crate) async fn checkpoint(
    conn: &mut PgConnection,
    sql: &Sql,
    lease: Lease,
    state: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(&sql.checkpoint)
        .bind(lease.id.0)
        .bind(lease.token.0)
        .bind(state)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

fn columns(leases: impl Iterator<Item = Lease>) -> (Vec<i64>, Vec<i64>) {
    leases.map(|l| (l.id.0, l.token.0)).unzip()
}
