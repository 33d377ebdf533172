//! One write operation as the writer receives it, and its answer.

use crate::ops::enqueue;
use steward_core::store::{
    CancelResult, ClaimRequest, Enqueued, Finish, HeartbeatResult, JobId, Lease, NewJob,
    RescueReport, StoreError,
};

/// The work of one write operation (inputs already validated).
pub(crate) enum Work {
    Migrate,
    Enqueue(Vec<NewJob>),
    Claim(ClaimRequest, i64),
    Heartbeat(Vec<Lease>, i64),
    Finish(Vec<Finish>),
    Checkpoint(Lease, String),
    Release(Vec<Lease>),
    Cancel(JobId),
    Retry(JobId),
    Rescue(u32),
    Prune {
        ids: Vec<i64>,
        completed_before: i64,
        dead_before: i64,
    },
    Lead {
        role: String,
        holder: String,
        ttl_ms: i64,
    },
    Resign {
        role: String,
        holder: String,
    },
}

/// What an op produced, before it is turned into its caller's type.
pub(crate) enum Done {
    Unit,
    Enqueued(Vec<Enqueued>),
    Claimed(Vec<Lease>),
    Heartbeats(Vec<HeartbeatResult>),
    Finished(Vec<bool>),
    Count(u64),
    Cancel(CancelResult),
    Flag(bool),
    Rescued(RescueReport),
}

/// Answers an op's caller.
type Responder = Box<dyn FnOnce(Result<Done, StoreError>) + Send + Sync>;

/// One write operation and the way to answer it.
pub(crate) struct Op {
    pub(crate) work: Work,
    pub(crate) respond: Responder,
}

impl Op {
    /// An op whose answer is extracted from [`Done`] by `extract` and sent
    /// to `reply`.
    pub(crate) fn new<T: Send + 'static>(
        work: Work,
        reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
        extract: fn(Done) -> Option<T>,
    ) -> Op {
        Op {
            work,
            respond: Box::new(move |result| {
                let answer = result.and_then(|done| {
                    extract(done).ok_or_else(|| StoreError::Database {
                        source: "internal: the writer answered with the wrong result type".into(),
                    })
                });
                // The caller may have stopped waiting (its future dropped):
                // nothing to do then.
                let _ = reply.send(answer);
            }),
        }
    }

    /// True if this op is written by exactly one SQL statement. Alone in a
    /// batch, such an op runs in autocommit mode: a write statement takes
    /// the write lock when it starts (with the busy timeout, like `BEGIN
    /// IMMEDIATE`) and commits when it ends, so the explicit `BEGIN` and
    /// `COMMIT` — two round trips to the driver's thread, about 100 µs of
    /// a lone operation's latency here — are not needed.
    pub(crate) fn is_one_statement(&self) -> bool {
        match &self.work {
            Work::Enqueue(jobs) => enqueue::is_one_statement(jobs),
            Work::Claim(request, _) => request.queues.iter().filter(|q| q.limit > 0).count() == 1,
            Work::Finish(batch) => steward_core::store::batch::one_statement(batch),
            Work::Heartbeat(..)
            | Work::Checkpoint(..)
            | Work::Retry(_)
            | Work::Prune { .. }
            | Work::Lead { .. }
            | Work::Resign { .. } => true,
            // Cancel reads the state, then writes; release and rescue put
            // jobs back in line, then cancel those whose cancel was
            // requested: they need the transaction.
            Work::Cancel(_) | Work::Release(_) | Work::Rescue(_) | Work::Migrate => false,
        }
    }

    /// How much of a batch's budget this op uses.
    pub(crate) fn weight(&self) -> usize {
        match &self.work {
            Work::Enqueue(jobs) => jobs.len().max(1),
            Work::Finish(batch) => batch.len().max(1),
            Work::Heartbeat(leases, _) | Work::Release(leases) => leases.len().max(1),
            Work::Claim(request, _) => request
                .queues
                .iter()
                .map(|q| q.limit as usize)
                .sum::<usize>()
                .max(1),
            Work::Prune { ids, .. } => ids.len().max(1),
            _ => 1,
        }
    }
}
