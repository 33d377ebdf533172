//! One group commit: a transaction around a batch of operations, with the
//! list-shaped ones merged into shared statements.

use sqlx::SqliteConnection;
use steward_core::store::{Finish, Lease, NewJob, StoreError};

use super::op::Op;
use crate::error::map_sqlx;
use crate::ops::{act, admin, claim, enqueue, history, leader, lease, nodes, queues, schedules};
use crate::sql::{self, now_ms};

/// The store's clock for one transaction, taken once the write lock is
/// held (time spent waiting for the lock does not make it stale).
fn tick(last_now: &mut i64) -> i64 {
    let now = now_ms().max(*last_now);
    *last_now = now;
    now
}

/// One transaction for `ops`: on success each op holds its answer (see
/// [`Op::send`]) and the result says whether the batch made work available;
/// on an error that rolled it all back, no op holds an answer.
pub(super) async fn group(
    conn: &mut SqliteConnection,
    file: &str,
    last_now: &mut i64,
    ops: &mut [Op],
) -> Result<bool, StoreError> {
    let result = transaction(conn, file, last_now, ops).await;
    if result.is_err() {
        ops.iter_mut().for_each(Op::discard);
    }
    result
}

async fn transaction(
    conn: &mut SqliteConnection,
    file: &str,
    last_now: &mut i64,
    ops: &mut [Op],
) -> Result<bool, StoreError> {
    if let [op] = &*ops {
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
        Ok(wake) => {
            sql::commit(conn, file).await?;
            Ok(wake)
        }
        Err(e) => {
            sql::rollback(conn, file).await;
            Err(map_sqlx(e, file))
        }
    }
}

/// Runs every op inside the open transaction, leaving each op's answer in
/// its reply. List-shaped ops of one kind (enqueue, finish, release,
/// heartbeat) are merged into shared statements, and each caller's share of
/// the results is split off the end in reverse order; claims run last so
/// they can take this batch's new and released jobs.
async fn apply(conn: &mut SqliteConnection, now: i64, ops: &mut [Op]) -> Result<bool, sqlx::Error> {
    let mut wake = false;

    // Enqueues: every caller's jobs in one stream of multi-row inserts.
    let jobs: Vec<&NewJob> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Enqueue(batch, _) => Some(batch),
            _ => None,
        })
        .flatten()
        .collect();
    if !jobs.is_empty() {
        let (mut all, inserted) = enqueue::insert(conn, now, &jobs).await?;
        wake |= inserted;
        for op in ops.iter_mut().rev() {
            if let Op::Enqueue(batch, reply) = op {
                reply.hold(Ok(all.split_off(all.len() - batch.len())));
            }
        }
    }

    // Finishes: one statement per outcome kind for all callers.
    let items: Vec<&Finish> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Finish(batch, _) => Some(batch),
            _ => None,
        })
        .flatten()
        .collect();
    if !items.is_empty() {
        let (mut all, due) = lease::finish(conn, now, &items).await?;
        wake |= due;
        for op in ops.iter_mut().rev() {
            if let Op::Finish(batch, reply) = op {
                reply.hold(Ok(all.split_off(all.len() - batch.len())));
            }
        }
    }

    // Releases.
    let leases: Vec<Lease> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Release(batch, _) => Some(batch),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    if !leases.is_empty() {
        let mut all = lease::release(conn, now, &leases).await?;
        wake |= all.iter().any(|&r| r);
        for op in ops.iter_mut().rev() {
            if let Op::Release(batch, reply) = op {
                let tail = all.split_off(all.len() - batch.len());
                reply.hold(Ok(tail.iter().filter(|&&r| r).count() as u64));
            }
        }
    }

    // Heartbeats: each item carries its own lease length.
    let beats: Vec<(Lease, i64)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Heartbeat(batch, lease_ms, _) => Some(batch.iter().map(|l| (*l, *lease_ms))),
            _ => None,
        })
        .flatten()
        .collect();
    if !beats.is_empty() {
        let mut all = lease::heartbeat(conn, now, &beats).await?;
        for op in ops.iter_mut().rev() {
            if let Op::Heartbeat(batch, _, reply) = op {
                reply.hold(Ok(all.split_off(all.len() - batch.len())));
            }
        }
    }

    // Everything else, one op at a time, claims last.
    for op in ops.iter_mut() {
        match op {
            Op::Checkpoint(l, state, reply) => {
                let written = lease::checkpoint(conn, *l, state).await?;
                reply.hold(if written {
                    Ok(())
                } else {
                    Err(StoreError::LeaseLost { id: l.id })
                });
            }
            Op::Cancel(id, reply) => reply.hold(Ok(admin::cancel(conn, now, *id).await?)),
            Op::Retry(id, reply) => {
                let retried = admin::retry(conn, now, *id).await?;
                wake |= retried;
                reply.hold(Ok(retried));
            }
            Op::Rescue(max, reply) => {
                let report = admin::rescue(conn, now, *max).await?;
                wake |= report.rescued > 0;
                reply.hold(Ok(report));
            }
            Op::Prune {
                ids,
                completed_before,
                dead_before,
                reply,
            } => reply.hold(Ok(admin::prune_ids(
                conn,
                ids,
                *completed_before,
                *dead_before,
            )
            .await?)),
            Op::Lead {
                role,
                holder,
                ttl_ms,
                reply,
            } => reply.hold(Ok(leader::lead(conn, now, role, holder, *ttl_ms).await?)),
            Op::Resign {
                role,
                holder,
                reply,
            } => {
                leader::resign(conn, role, holder).await?;
                reply.hold(Ok(()));
            }
            Op::SaveSchedules {
                defs,
                remove_undeclared,
                reply,
            } => reply.hold(Ok(
                schedules::save(conn, now, defs, *remove_undeclared).await?
            )),
            Op::PauseSchedule { id, paused, reply } => {
                reply.hold(Ok(schedules::pause(conn, now, id, *paused).await?))
            }
            Op::DeleteSchedule { id, reply } => reply.hold(Ok(schedules::delete(conn, id).await?)),
            Op::FireSchedule(fire, reply) => {
                let fired = schedules::fire(conn, now, fire).await?;
                wake |= fired.as_ref().is_some_and(|f| !f.is_empty());
                reply.hold(Ok(fired));
            }
            Op::RecordHistory(deltas, reply) => {
                history::record(conn, now, deltas.clone()).await?;
                reply.hold(Ok(()));
            }
            Op::PruneHistory(older_than, reply) => {
                reply.hold(Ok(history::prune(conn, now, *older_than).await?));
            }
            Op::TimeTravel { by_ms, reply } => {
                let travelled = admin::time_travel(conn, now, *by_ms).await?;
                // Jobs made due now wake the workers, as an enqueue's do.
                wake |= travelled.due_now;
                reply.hold(Ok(travelled));
            }
            Op::Act(chunk, reply) => {
                let (acted, retried) = act::act(conn, now, chunk).await?;
                wake |= retried;
                reply.hold(Ok(acted));
            }
            Op::Reschedule(id, change, reply) => {
                let moved = act::reschedule(conn, now, *id, change).await?;
                wake |= moved.1.is_some_and(|at| at <= now);
                reply.hold(Ok(moved));
            }
            Op::SetQueuePaused {
                queue,
                paused,
                reply,
            } => reply.hold(Ok(queues::set_paused(conn, now, queue, *paused).await?)),
            Op::RegisterNode(report, reply) => {
                nodes::register(conn, now, report).await?;
                reply.hold(Ok(()));
            }
            Op::RemoveNode { id, reply } => reply.hold(Ok(nodes::remove(conn, id).await?)),
            Op::Migrate(_)
            | Op::Enqueue(..)
            | Op::Claim(..)
            | Op::Heartbeat(..)
            | Op::Finish(..)
            | Op::Release(..) => {}
        }
    }
    for op in ops.iter_mut() {
        if let Op::Claim(request, lease_ms, reply) = op {
            reply.hold(Ok(claim::claim(conn, now, request, *lease_ms).await?));
        }
    }
    Ok(wake)
}
