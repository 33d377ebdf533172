//! What a store does with a job it claimed but cannot hand to a worker.

use chrono::Utc;

use super::{AttemptError, ErrorKind, Finish, FinishOutcome, Lease};

/// The outcome a store writes, fenced by the claim's own lease, for a
/// claimed job whose row it cannot read (a time no client can represent,
/// a column of the wrong type): the job is dead, with `problem` in its
/// errors, and the rest of the claim goes to the worker. Failing the whole
/// claim instead would let one bad row stop every worker on every claim;
/// retrying would fail the same way each time. An operator fixes or
/// deletes the row, then retries the job.
///
/// ```
/// use steward_core::store::{FinishOutcome, JobId, Lease, LeaseToken, unreadable_job};
/// let lease = Lease { id: JobId(7), token: LeaseToken(1) };
/// let finish = unreadable_job(lease, 1, "column run_at holds infinity: out of range");
/// assert!(matches!(finish.outcome, FinishOutcome::Failed { retry_in: None, .. }));
/// ```
pub fn unreadable_job(lease: Lease, attempt: u32, problem: &str) -> Finish {
    Finish {
        lease,
        outcome: FinishOutcome::Failed {
            error: AttemptError {
                attempt,
                at: Utc::now(),
                kind: ErrorKind::Payload,
                message: format!(
                    "the job's stored row cannot be read ({problem}); it is dead rather than \
                     retried, as every attempt would fail the same way: correct or delete the \
                     row, then retry the job"
                ),
            },
            retry_in: None,
        },
    }
}

/// Writes the outcomes of [`unreadable_job`] through `store`, logging each
/// job as it goes: stores call this from their `claim`, after the claim has
/// committed. If the write fails, the leases expire and the jobs are
/// rescued, then claimed and failed again, until `max_rescues` buries them.
///
/// ```
/// # async fn demo<S: steward_core::store::Store>(store: &S, bad: Vec<steward_core::store::Finish>) {
/// steward_core::store::fail_unreadable(store, bad).await;
/// # }
/// ```
pub async fn fail_unreadable<S: super::Store + ?Sized>(store: &S, outcomes: Vec<Finish>) {
    for finish in &outcomes {
        if let FinishOutcome::Failed { error, .. } = &finish.outcome {
            tracing::error!(store = store.name(), job = %finish.lease.id, error = %error.message, "claimed a job whose row cannot be read; it is dead");
        }
    }
    if let Err(err) = store.finish(outcomes).await {
        tracing::error!(store = store.name(), error = %err, "cannot fail the jobs whose rows cannot be read; they are rescued when their leases expire");
    }
}
