//! One group commit: a transaction around a batch of operations, with the
//! list-shaped ones merged into shared statements.

use sqlx::SqliteConnection;
use steward_core::store::{Finish, Lease, NewJob, StoreError};

use super::op::{Done, Op, Work};
use crate::error::map_sqlx;
use crate::ops::{admin, claim, enqueue, leader, lease};
use crate::sql::{self, now_ms};

/// The store's clock for one transaction, taken once the write lock is
/// held (time spent waiting for the lock does not make it stale).
fn tick(last_now: &mut i64) -> i64 {
    let now = now_ms().max(*last_now);
    *last_now = now;
    now
}

/// One transaction for `ops`: their results (in order) and whether they
/// made work available, or the error that rolled it all back.
pub(super) async fn group(
    conn: &mut SqliteConnection,
    file: &str,
    last_now: &mut i64,
    ops: &[Op],
) -> Result<(Vec<Result<Done, StoreError>>, bool), StoreError> {
    if let [op] = ops {
        if op.is_one_statement() {
            // Autocommit: the statement is its own transaction (see
            // `Op::is_one_statement`), and may wait for the lock inside it.
            // `now` is read before that wait: statements that write a lease
            // read the clock again once they hold the lock (`clock_cte`),
            // so a lease is never shorter than asked; for the others a
            // `now` a little early is harmless.
            let now = tick(last_now);
            return apply(conn, now, ops).await.map_err(|e| map_sqlx(e, file));
        }
    }
    sql::begin_immediate(conn, file).await?;
    let now = tick(last_now);
    match apply(conn, now, ops).await {
        Ok(out) => {
            sql::commit(conn, file).await?;
            Ok(out)
        }
        Err(e) => {
            sql::rollback(conn, file).await;
            Err(map_sqlx(e, file))
        }
    }
}

/// Runs every op inside the open transaction. List-shaped ops of one kind
/// (enqueue, finish, release, heartbeat) are merged into shared statements;
/// claims run last so they can take this batch's new and released jobs.
async fn apply(
    conn: &mut SqliteConnection,
    now: i64,
    ops: &[Op],
) -> Result<(Vec<Result<Done, StoreError>>, bool), sqlx::Error> {
    let mut results: Vec<Option<Result<Done, StoreError>>> = ops.iter().map(|_| None).collect();
    let mut wake = false;

    // Enqueues: every caller's jobs in one stream of multi-row inserts.
    let mut spans = Vec::new();
    let mut jobs: Vec<&NewJob> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if let Work::Enqueue(batch) = &op.work {
            spans.push((i, batch.len()));
            jobs.extend(batch.iter());
        }
    }
    if !jobs.is_empty() {
        let (mut all, inserted) = enqueue::insert(conn, now, &jobs).await?;
        wake |= inserted;
        for (i, n) in spans.into_iter().rev() {
            let tail = all.split_off(all.len() - n);
            results[i] = Some(Ok(Done::Enqueued(tail)));
        }
    }

    // Finishes: one statement per outcome kind for all callers.
    let mut spans = Vec::new();
    let mut items: Vec<&Finish> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if let Work::Finish(batch) = &op.work {
            spans.push((i, batch.len()));
            items.extend(batch.iter());
        }
    }
    if !items.is_empty() {
        let (mut all, due) = lease::finish(conn, now, &items).await?;
        wake |= due;
        for (i, n) in spans.into_iter().rev() {
            let tail = all.split_off(all.len() - n);
            results[i] = Some(Ok(Done::Finished(tail)));
        }
    }

    // Releases.
    let mut spans = Vec::new();
    let mut leases: Vec<Lease> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if let Work::Release(batch) = &op.work {
            spans.push((i, batch.len()));
            leases.extend(batch.iter().copied());
        }
    }
    if !leases.is_empty() {
        let mut all = lease::release(conn, now, &leases).await?;
        wake |= all.iter().any(|&r| r);
        for (i, n) in spans.into_iter().rev() {
            let tail = all.split_off(all.len() - n);
            let count = tail.iter().filter(|&&r| r).count() as u64;
            results[i] = Some(Ok(Done::Count(count)));
        }
    }

    // Heartbeats: each item carries its own lease length.
    let mut spans = Vec::new();
    let mut beats: Vec<(Lease, i64)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if let Work::Heartbeat(batch, lease_ms) = &op.work {
            spans.push((i, batch.len()));
            beats.extend(batch.iter().map(|l| (*l, *lease_ms)));
        }
    }
    if !beats.is_empty() {
        let mut all = lease::heartbeat(conn, now, &beats).await?;
        for (i, n) in spans.into_iter().rev() {
            let tail = all.split_off(all.len() - n);
            results[i] = Some(Ok(Done::Heartbeats(tail)));
        }
    }

    // Everything else, one op at a time, claims last.
    for (i, op) in ops.iter().enumerate() {
        let done = match &op.work {
            Work::Checkpoint(l, state) => {
                if lease::checkpoint(conn, *l, state).await? {
                    Ok(Done::Unit)
                } else {
                    Err(StoreError::LeaseLost { id: l.id })
                }
            }
            Work::Cancel(id) => Ok(Done::Cancel(admin::cancel(conn, now, *id).await?)),
            Work::Retry(id) => {
                let retried = admin::retry(conn, now, *id).await?;
                wake |= retried;
                Ok(Done::Flag(retried))
            }
            Work::Rescue(max) => {
                let report = admin::rescue(conn, now, *max).await?;
                wake |= report.rescued > 0;
                Ok(Done::Rescued(report))
            }
            Work::Prune {
                ids,
                completed_before,
                dead_before,
            } => Ok(Done::Count(
                admin::prune_ids(conn, ids, *completed_before, *dead_before).await?,
            )),
            Work::Lead {
                role,
                holder,
                ttl_ms,
            } => Ok(Done::Flag(
                leader::lead(conn, now, role, holder, *ttl_ms).await?,
            )),
            Work::Resign { role, holder } => {
                leader::resign(conn, role, holder).await?;
                Ok(Done::Unit)
            }
            _ => continue,
        };
        results[i] = Some(done);
    }
    for (i, op) in ops.iter().enumerate() {
        if let Work::Claim(request, lease_ms) = &op.work {
            let jobs = claim::claim(conn, now, request, *lease_ms).await?;
            results[i] = Some(Ok(Done::Claimed(jobs)));
        }
    }

    let results = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(StoreError::Database {
                    source: "internal: operation not run by the writer".into(),
                })
            })
        })
        .collect();
    Ok((results, wake))
}
