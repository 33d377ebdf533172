//! One write operation as the writer receives it: its inputs (already
//! validated) and its caller's reply, typed by what the operation answers.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::ops::act::Moved;
use crate::ops::admin::Travelled;
use crate::ops::enqueue;
use crate::ops::nodes::Report;
use steward_core::store::{
    ActOn, Acted, CancelResult, ClaimRequest, Enqueued, Finish, FiredTick, HeartbeatResult,
    HistoryDelta, JobId, Lease, NewJob, QueueChange, Reschedule, RescueReport, SaveReport,
    ScheduleDef, ScheduleFire, StoreError,
};

/// A caller's reply channel, and the answer held for it until its batch
/// commits: an answer is sent only once it is durable.
pub(crate) struct Reply<T> {
    tx: oneshot::Sender<Result<T, StoreError>>,
    held: Option<Result<T, StoreError>>,
}

impl<T> Reply<T> {
    pub(crate) fn new(tx: oneshot::Sender<Result<T, StoreError>>) -> Reply<T> {
        Reply { tx, held: None }
    }

    /// Keeps `answer` until the batch's transaction ends.
    pub(crate) fn hold(&mut self, answer: Result<T, StoreError>) {
        self.held = Some(answer);
    }

    /// Answers at once (an op that runs outside a batch's transaction).
    pub(crate) fn answer(self, answer: Result<T, StoreError>) {
        // The caller may have stopped waiting (its future dropped): nothing
        // to do then.
        let _ = self.tx.send(answer);
    }

    fn discard(&mut self) {
        self.held = None;
    }

    fn send(mut self) {
        let answer = self.held.take().unwrap_or_else(|| {
            Err(StoreError::Database {
                source: "internal: operation not run by the writer".into(),
            })
        });
        self.answer(answer);
    }
}

/// One write operation, with its caller's [`Reply`].
pub(crate) enum Op {
    Migrate(Reply<()>),
    Enqueue(Vec<NewJob>, Reply<Vec<Enqueued>>),
    /// The request and the lease length in milliseconds.
    Claim(ClaimRequest, i64, Reply<Vec<Lease>>),
    /// The leases and the new lease length in milliseconds.
    Heartbeat(Vec<Lease>, i64, Reply<Vec<HeartbeatResult>>),
    Finish(Vec<Finish>, Reply<Vec<bool>>),
    Checkpoint(Lease, String, Reply<()>),
    Release(Vec<Lease>, Reply<u64>),
    Cancel(JobId, Reply<CancelResult>),
    Retry(JobId, Reply<bool>),
    Rescue(u32, Reply<RescueReport>),
    Prune {
        ids: Vec<i64>,
        completed_before: i64,
        dead_before: i64,
        reply: Reply<u64>,
    },
    Lead {
        role: String,
        holder: String,
        ttl_ms: i64,
        reply: Reply<bool>,
    },
    Resign {
        role: String,
        holder: String,
        reply: Reply<()>,
    },
    SaveSchedules {
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
        reply: Reply<SaveReport>,
    },
    PauseSchedule {
        id: String,
        paused: bool,
        reply: Reply<bool>,
    },
    DeleteSchedule {
        id: String,
        reply: Reply<bool>,
    },
    FireSchedule(ScheduleFire, Reply<Option<Vec<FiredTick>>>),
    /// Pauses (`paused`) or resumes a queue.
    SetQueuePaused {
        queue: String,
        paused: bool,
        reply: Reply<QueueChange>,
    },
    /// A node's report, checked and encoded (boxed: it is the largest op).
    RegisterNode(Box<Report>, Reply<()>),
    RemoveNode {
        id: String,
        reply: Reply<bool>,
    },
    /// For tests: waiting work moves this many milliseconds earlier.
    TimeTravel {
        by_ms: i64,
        reply: Reply<Travelled>,
    },
    RecordHistory(Vec<HistoryDelta>, Reply<()>),
    PruneHistory(Duration, Reply<u64>),
    /// An operator's action on a chunk of jobs.
    Act(ActOn, Reply<Vec<Acted>>),
    /// An operator's change to a waiting job.
    Reschedule(JobId, Reschedule, Reply<Moved>),
}

/// Runs `$body` with `$r` bound to the op's reply, whatever its type.
macro_rules! on_reply {
    ($op:expr, $r:ident => $body:expr) => {
        match $op {
            Op::Migrate($r) => $body,
            Op::Enqueue(_, $r) => $body,
            Op::Claim(_, _, $r) => $body,
            Op::Heartbeat(_, _, $r) => $body,
            Op::Finish(_, $r) => $body,
            Op::Checkpoint(_, _, $r) => $body,
            Op::Release(_, $r) => $body,
            Op::Cancel(_, $r) => $body,
            Op::Retry(_, $r) => $body,
            Op::Rescue(_, $r) => $body,
            Op::Prune { reply: $r, .. } => $body,
            Op::Lead { reply: $r, .. } => $body,
            Op::Resign { reply: $r, .. } => $body,
            Op::SaveSchedules { reply: $r, .. } => $body,
            Op::PauseSchedule { reply: $r, .. } => $body,
            Op::DeleteSchedule { reply: $r, .. } => $body,
            Op::FireSchedule(_, $r) => $body,
            Op::TimeTravel { reply: $r, .. } => $body,
            Op::RecordHistory(_, $r) => $body,
            Op::PruneHistory(_, $r) => $body,
            Op::Act(_, $r) => $body,
            Op::Reschedule(_, _, $r) => $body,
            Op::SetQueuePaused { reply: $r, .. } => $body,
            Op::RegisterNode(_, $r) => $body,
            Op::RemoveNode { reply: $r, .. } => $body,
        }
    };
}

impl Op {
    /// Sends the caller the answer held for it (after a commit).
    pub(crate) fn send(self) {
        on_reply!(self, r => r.send());
    }

    /// Answers the caller with `err`.
    pub(crate) fn fail(self, err: StoreError) {
        on_reply!(self, r => r.answer(Err(err)));
    }

    /// Forgets the answer held for the caller (its transaction rolled back).
    pub(crate) fn discard(&mut self) {
        on_reply!(self, r => r.discard());
    }

    /// True if this op is written by exactly one SQL statement. Alone in a
    /// batch, such an op runs in autocommit mode: a write statement takes
    /// the write lock when it starts (with the busy timeout, like `BEGIN
    /// IMMEDIATE`) and commits when it ends, so the explicit `BEGIN` and
    /// `COMMIT` — two round trips to the driver's thread, about 100 µs of
    /// a lone operation's latency here — are not needed.
    pub(crate) fn is_one_statement(&self) -> bool {
        match self {
            Op::Enqueue(jobs, _) => enqueue::is_one_statement(jobs),
            Op::Claim(request, ..) => request.queues.iter().filter(|q| q.limit > 0).count() == 1,
            Op::Finish(batch, _) => steward_core::store::batch::one_statement(batch),
            Op::Heartbeat(..)
            | Op::Checkpoint(..)
            | Op::Retry(..)
            | Op::Prune { .. }
            | Op::Lead { .. }
            | Op::Resign { .. }
            | Op::PruneHistory(..) => true,
            Op::RemoveNode { .. } => true,
            // Cancel reads the state, then writes; release and rescue put
            // jobs back in line, then cancel those whose cancel was
            // requested: they need the transaction.
            Op::Cancel(..) | Op::Release(..) | Op::Rescue(..) | Op::Migrate(_) => false,
            // Several statements each.
            Op::SaveSchedules { .. }
            | Op::PauseSchedule { .. }
            | Op::DeleteSchedule { .. }
            | Op::FireSchedule(..)
            | Op::TimeTravel { .. }
            | Op::RecordHistory(..)
            | Op::Act(..)
            | Op::Reschedule(..)
            | Op::SetQueuePaused { .. }
            | Op::RegisterNode(..) => false,
        }
    }

    /// How much of a batch's budget this op uses.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Op::Enqueue(jobs, _) => jobs.len().max(1),
            Op::Finish(batch, _) => batch.len().max(1),
            Op::Heartbeat(leases, ..) | Op::Release(leases, _) => leases.len().max(1),
            Op::Claim(request, ..) => request
                .queues
                .iter()
                .map(|q| q.limit as usize)
                .sum::<usize>()
                .max(1),
            Op::Prune { ids, .. } => ids.len().max(1),
            Op::Act(chunk, _) => chunk.ids.len().max(1),
            _ => 1,
        }
    }
}
