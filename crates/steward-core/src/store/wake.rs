//! [`WorkSignal`]: what a store's `wait_for_work` waits on — wake-ups for
//! work due now, and the due times of work it knows is coming.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Finish, FinishOutcome, NewJob};

/// How many due times a signal remembers. Beyond it the latest are
/// forgotten (their jobs are found by the poll), so a burst of delayed jobs
/// cannot grow it without bound.
const MAX_DUE: usize = 1024;

/// Wakes workers idle in [`Store::wait_for_work`](super::Store::wait_for_work):
/// at once when work became due ([`wake`](Self::wake)), and when work the
/// store heard of comes due ([`due_in`](Self::due_in): a delayed enqueue, a
/// retry's back-off, a snooze), so such jobs start on time rather than at
/// the next poll.
///
/// Every waiter wakes, not one: a wait names no queue, so a single woken
/// worker might not serve the new job's queue. A wake-up with no one
/// waiting is kept for the next wait (one, however many were sent), so a
/// worker between an empty claim and its wait does not miss it.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::WorkSignal;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let signal = WorkSignal::new();
/// signal.due_in(Duration::from_millis(500)); // e.g. a retry's back-off
/// let started = tokio::time::Instant::now();
/// signal.wait(Duration::from_secs(30)).await;
/// assert_eq!(started.elapsed(), Duration::from_millis(500));
/// # }
/// ```
#[derive(Debug, Default)]
pub struct WorkSignal {
    now: Notify,
    /// Told when an earlier due time arrives, so sleeping waits re-aim.
    changed: Notify,
    due: Mutex<BTreeSet<Instant>>,
}

impl WorkSignal {
    /// A signal with nothing due.
    ///
    /// ```
    /// let signal = steward_core::store::WorkSignal::new();
    /// ```
    pub fn new() -> WorkSignal {
        WorkSignal::default()
    }

    /// Work is due now: wakes every waiting worker, and keeps one wake-up
    /// for the next wait if no one is waiting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let signal = steward_core::store::WorkSignal::new();
    /// signal.wake();
    /// signal.wait(std::time::Duration::from_secs(30)).await; // returns at once
    /// # }
    /// ```
    pub fn wake(&self) {
        self.now.notify_waiters();
        self.now.notify_one();
    }

    /// Work comes due `delay` from now: waits end by then. A zero delay is
    /// [`wake`](Self::wake).
    ///
    /// ```
    /// let signal = steward_core::store::WorkSignal::new();
    /// # let _rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime for the example");
    /// # let _guard = _rt.enter();
    /// signal.due_in(std::time::Duration::from_secs(2));
    /// ```
    pub fn due_in(&self, delay: Duration) {
        if delay.is_zero() {
            self.wake();
            return;
        }
        // An absurd delay would overflow the clock; it is never worth a
        // wake-up before the poll anyway.
        let Some(at) = Instant::now().checked_add(delay) else {
            return;
        };
        let mut due = self.due();
        let earliest = due.first().copied();
        if due.len() >= MAX_DUE {
            match due.last().copied() {
                Some(latest) if at < latest => {
                    due.remove(&latest);
                }
                _ => return,
            }
        }
        due.insert(at);
        drop(due);
        if earliest.is_none_or(|e| at < e) {
            self.changed.notify_waiters();
        }
    }

    /// Notes when the delayed jobs among `jobs` come due: each one's
    /// `delay`, or its `run_at` by this machine's clock. Jobs due now are
    /// left to the store's own [`wake`](Self::wake) after its commit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{NewJob, WorkSignal};
    /// # let _rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime for the example");
    /// # let _guard = _rt.enter();
    /// let signal = WorkSignal::new();
    /// signal.jobs_due(&[NewJob::new("email", "{}").delay(Duration::from_secs(5))]);
    /// ```
    pub fn jobs_due(&self, jobs: &[NewJob]) {
        let now = chrono::Utc::now();
        let mut noted = BTreeSet::new();
        for delay in jobs.iter().filter_map(|job| job_delay(job, now)) {
            // Bulk enqueues often share one delay: note it once.
            if noted.insert(delay) {
                self.due_in(delay);
            }
        }
    }

    /// Notes when the retries and snoozes with a delay in `batch` come due.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{Finish, FinishOutcome, JobId, Lease, LeaseToken, WorkSignal};
    /// # let _rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime for the example");
    /// # let _guard = _rt.enter();
    /// let signal = WorkSignal::new();
    /// let lease = Lease { id: JobId(1), token: LeaseToken(2) };
    /// signal.finishes_due(&[Finish { lease, outcome: FinishOutcome::Snoozed { delay: Duration::from_secs(1) } }]);
    /// ```
    pub fn finishes_due(&self, batch: &[Finish]) {
        if let Some(delay) = earliest_requeue(batch) {
            self.due_in(delay);
        }
    }

    /// Waits until [`wake`](Self::wake), the earliest due time noted, or
    /// `max_wait`, whichever comes first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let signal = steward_core::store::WorkSignal::new();
    /// signal.wait(std::time::Duration::from_millis(50)).await; // nothing due: 50 ms
    /// # }
    /// ```
    pub async fn wait(&self, max_wait: Duration) {
        // Created before anything is checked: a wake-up from here on is
        // not missed.
        let woken = self.now.notified();
        tokio::pin!(woken);
        let end = Instant::now().checked_add(max_wait);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            if self.take_passed(now) || end.is_some_and(|end| now >= end) {
                return;
            }
            let next = self.due().first().copied();
            let until = match (next, end) {
                (Some(next), Some(end)) => Some(next.min(end)),
                (next, end) => next.or(end),
            };
            let sleep = async {
                match until {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut woken => return,
                () = sleep => {
                    // Every waiter aimed at this time returns, whichever of
                    // them clears it.
                    self.take_passed(Instant::now());
                    return;
                }
                () = &mut changed => {}
            }
        }
    }

    /// Forgets the due times at or before `now`; true if there were any.
    fn take_passed(&self, now: Instant) -> bool {
        let mut due = self.due();
        let later = due.split_off(&(now + Duration::from_nanos(1)));
        let passed = !due.is_empty();
        *due = later;
        passed
    }

    /// The due times, even after a panic elsewhere poisoned the lock: every
    /// change to the set is whole before anything can panic.
    fn due(&self) -> MutexGuard<'_, BTreeSet<Instant>> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long until the earliest delayed job among `jobs` comes due (its
/// `delay`, or its `run_at` by this machine's clock); `None` if every job
/// is due now. For a store that announces due times to other processes.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{NewJob, earliest_job_due};
/// let jobs = [NewJob::new("a", "{}").delay(Duration::from_secs(3)), NewJob::new("b", "{}")];
/// assert_eq!(earliest_job_due(&jobs), Some(Duration::from_secs(3)));
/// ```
pub fn earliest_job_due(jobs: &[NewJob]) -> Option<Duration> {
    let now = chrono::Utc::now();
    jobs.iter().filter_map(|job| job_delay(job, now)).min()
}

/// A job's non-zero delay from `now`.
fn job_delay(job: &NewJob, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let delay = match (job.run_at, job.delay) {
        (Some(at), _) => (at - now).to_std().ok(),
        (None, delay) => delay,
    };
    delay.filter(|d| !d.is_zero())
}

/// The shortest non-zero delay after which a retry or snooze in `batch`
/// puts its job back in line; `None` if none does. For a store that
/// announces due times to other processes.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{Finish, FinishOutcome, JobId, Lease, LeaseToken, earliest_requeue};
/// let lease = Lease { id: JobId(1), token: LeaseToken(2) };
/// let snooze = Finish { lease, outcome: FinishOutcome::Snoozed { delay: Duration::from_secs(2) } };
/// assert_eq!(earliest_requeue(&[snooze]), Some(Duration::from_secs(2)));
/// ```
pub fn earliest_requeue(batch: &[Finish]) -> Option<Duration> {
    batch
        .iter()
        .filter_map(|f| match &f.outcome {
            FinishOutcome::Failed {
                retry_in: Some(delay),
                ..
            }
            | FinishOutcome::Snoozed { delay } => Some(*delay),
            _ => None,
        })
        .filter(|d| !d.is_zero())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_the_earliest_due_time() {
        let signal = WorkSignal::new();
        signal.due_in(Duration::from_secs(3));
        signal.due_in(Duration::from_secs(1));
        let t0 = Instant::now();
        signal.wait(LONG).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        // The later one is still remembered for the next wait.
        signal.wait(LONG).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
        signal.wait(Duration::from_secs(5)).await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(8),
            "nothing left: max_wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_due_time_noted_during_a_wait_shortens_it() {
        let signal = std::sync::Arc::new(WorkSignal::new());
        let t0 = Instant::now();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.wait(LONG).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        signal.due_in(Duration::from_millis(400));
        waiter.await.expect("the wait");
        assert_eq!(t0.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn every_waiter_wakes_at_a_due_time() {
        let signal = WorkSignal::new();
        signal.due_in(Duration::from_secs(1));
        let t0 = Instant::now();
        tokio::join!(signal.wait(LONG), signal.wait(LONG));
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_time_passed_before_the_wait_returns_it_at_once() {
        let signal = WorkSignal::new();
        signal.due_in(Duration::from_millis(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        signal.wait(LONG).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_up_before_the_wait_is_kept_once() {
        let signal = WorkSignal::new();
        signal.wake();
        signal.wake();
        let t0 = Instant::now();
        signal.wait(LONG).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        signal.wait(Duration::from_secs(1)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_earliest_due_times_are_remembered() {
        let signal = WorkSignal::new();
        let n = MAX_DUE as u64 + 10;
        // Each one earlier than the last: the latest ones make room.
        for i in 0..n {
            signal.due_in(Duration::from_millis(100_000 - i));
        }
        let now = Instant::now();
        let bounds = |s: &WorkSignal| {
            let due = s.due();
            (due.len(), due.first().copied(), due.last().copied())
        };
        let earliest = now + Duration::from_millis(100_000 - (n - 1));
        let latest = now + Duration::from_millis(100_000 - 10);
        assert_eq!(bounds(&signal), (MAX_DUE, Some(earliest), Some(latest)));
        // A later one than all those kept is the one forgotten.
        signal.due_in(Duration::from_secs(200));
        assert_eq!(bounds(&signal), (MAX_DUE, Some(earliest), Some(latest)));
    }

    #[test]
    fn retries_and_snoozes_with_a_delay_are_requeues() {
        use crate::store::{AttemptError, ErrorKind, JobId, Lease, LeaseToken};
        let lease = Lease {
            id: JobId(1),
            token: LeaseToken(1),
        };
        let failed = |retry_in| Finish {
            lease,
            outcome: FinishOutcome::Failed {
                error: AttemptError {
                    attempt: 1,
                    at: chrono::Utc::now(),
                    kind: ErrorKind::Error,
                    message: "x".into(),
                },
                retry_in,
            },
        };
        let snoozed = |ms| Finish {
            lease,
            outcome: FinishOutcome::Snoozed {
                delay: Duration::from_millis(ms),
            },
        };
        let batch = [
            failed(None),
            failed(Some(Duration::from_millis(700))),
            snoozed(0),
            snoozed(300),
            Finish {
                lease,
                outcome: FinishOutcome::Completed,
            },
        ];
        assert_eq!(earliest_requeue(&batch), Some(Duration::from_millis(300)));
        assert_eq!(earliest_requeue(&batch[..1]), None);
    }
}
