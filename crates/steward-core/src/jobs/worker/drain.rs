//! Running a queue's due jobs inline, one at a time, in claim order: the
//! deterministic loop a test (or a one-off script) uses instead of a worker
//! service and sleeps. Oban's `drain_queue`, Sidekiq's `drain`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Worker;
use super::attempt::{AttemptDeps, AttemptEnd, Stopper, run_guarded};
use crate::store::{ClaimRequest, FinishOutcome, JobId, QueueClaim, Store, StoreError};

/// How many jobs one [`Worker::drain`] runs at most: a job that enqueues
/// itself again at once would otherwise never let a drain end.
pub const DRAIN_LIMIT: usize = 1000;

/// How one drained attempt ended.
///
/// ```
/// use steward_core::jobs::DrainOutcome;
/// assert!(DrainOutcome::Completed.is_completed());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainOutcome {
    /// It succeeded.
    Completed,
    /// It failed and will be retried after this long (on the store's
    /// clock: `Store::time_travel` brings it due in a test).
    Retried {
        /// The failure.
        error: String,
        /// The wait before the next attempt.
        after: Duration,
    },
    /// It failed for good (out of attempts, or unreadable).
    Dead {
        /// The failure.
        error: String,
    },
    /// It asked to run again later without using up an attempt.
    Snoozed {
        /// How much later.
        delay: Duration,
    },
    /// It cancelled itself.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// It was put back without an outcome (it returned `Cancelled`).
    Released,
    /// Its outcome was not written: the store had given the job to another
    /// attempt meanwhile.
    LeaseLost,
}

impl DrainOutcome {
    /// True for [`DrainOutcome::Completed`].
    ///
    /// ```
    /// assert!(!steward_core::jobs::DrainOutcome::Released.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        matches!(self, DrainOutcome::Completed)
    }
}

/// One attempt a drain ran.
///
/// ```
/// fn ok(r: &steward_core::jobs::Drained) -> bool { r.ran.iter().all(|a| a.outcome.is_completed()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainedJob {
    /// The job.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Which attempt this was.
    pub attempt: u32,
    /// How it ended.
    pub outcome: DrainOutcome,
}

/// What [`Worker::drain`] ran, in order.
///
/// ```
/// fn count(r: &steward_core::jobs::Drained) -> usize { r.ran.len() }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// Every attempt, in the order run.
    pub ran: Vec<DrainedJob>,
    /// The drain stopped at [`DRAIN_LIMIT`]: due jobs may be left.
    pub more: bool,
}

impl Drained {
    /// The attempts of one kind.
    ///
    /// ```
    /// fn reports(r: &steward_core::jobs::Drained) -> usize { r.of_kind("report").count() }
    /// ```
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a DrainedJob> + 'a {
        self.ran.iter().filter(move |j| j.kind == kind)
    }

    /// True if every attempt completed.
    ///
    /// ```
    /// assert!(steward_core::jobs::Drained::default().all_completed());
    /// ```
    pub fn all_completed(&self) -> bool {
        self.ran.iter().all(|j| j.outcome.is_completed())
    }
}

impl<S: Store> Worker<S> {
    /// Runs every job of `queue` that is due now, one at a time, in the
    /// order a worker would claim them, each to its outcome (written to the
    /// store as a worker writes it), jobs they enqueue included when due,
    /// until none is due or [`DRAIN_LIMIT`] ran. A failed job's retry is
    /// due later: it is not run again by this drain. For tests: no host,
    /// no sleep.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(worker: steward_core::jobs::Worker<S>) -> Result<(), steward_core::store::StoreError> {
    /// let drained = worker.drain("default").await?;
    /// assert!(drained.all_completed());
    /// # Ok(()) }
    /// ```
    pub async fn drain(&self, queue: &str) -> Result<Drained, StoreError> {
        let deps = Arc::new(AttemptDeps {
            registry: self.registry.clone(),
            sink: self.store.clone(),
            extensions: Arc::new(self.extensions.clone()),
            grace: self.config.stop_grace,
            shutting_down: CancellationToken::new(),
            span: tracing::Span::current(),
        });
        let mut drained = Drained::default();
        loop {
            if drained.ran.len() >= DRAIN_LIMIT {
                // Not checked by claiming one more: a claim put back counts
                // as an interruption on the job's record.
                drained.more = true;
                return Ok(drained);
            }
            let Some(job) = self.claim_one(queue).await?.pop() else {
                return Ok(drained);
            };
            let (id, kind, attempt) = (job.lease.id, job.kind.clone(), job.attempt);
            let outcome = match run_guarded(job, Stopper::new(), deps.clone()).await {
                AttemptEnd::Finish(finish) => {
                    let outcome = describe(&finish.outcome);
                    let applied = self.store.finish(vec![finish]).await?;
                    if applied.first().copied().unwrap_or(false) {
                        outcome
                    } else {
                        DrainOutcome::LeaseLost
                    }
                }
                AttemptEnd::Release(lease) => {
                    self.store.release(vec![lease]).await?;
                    DrainOutcome::Released
                }
                AttemptEnd::Nothing => DrainOutcome::Completed,
            };
            drained.ran.push(DrainedJob {
                id,
                kind,
                attempt,
                outcome,
            });
        }
    }

    async fn claim_one(&self, queue: &str) -> Result<Vec<crate::store::ClaimedJob>, StoreError> {
        self.store
            .claim(ClaimRequest {
                worker: format!("drain/{}", std::process::id()),
                queues: vec![QueueClaim {
                    queue: queue.to_string(),
                    limit: 1,
                }],
                lease: self.config.lease,
                max_suspects: 1,
                kinds: Some(self.registry.kinds()),
            })
            .await
    }
}

fn describe(outcome: &FinishOutcome) -> DrainOutcome {
    match outcome {
        FinishOutcome::Completed => DrainOutcome::Completed,
        FinishOutcome::Failed {
            error,
            retry_in: Some(after),
        } => DrainOutcome::Retried {
            error: error.message.clone(),
            after: *after,
        },
        FinishOutcome::Failed {
            error,
            retry_in: None,
        } => DrainOutcome::Dead {
            error: error.message.clone(),
        },
        FinishOutcome::Snoozed { delay } => DrainOutcome::Snoozed { delay: *delay },
        FinishOutcome::Cancelled { reason } => DrainOutcome::Cancelled {
            reason: reason.clone(),
        },
    }
}
