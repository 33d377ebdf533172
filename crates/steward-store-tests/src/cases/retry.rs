//! `retry`: an operator gives a finished job a fresh start.

use std::time::Duration;

use steward_core::store::{CancelResult, FinishOutcome, JobId, JobState};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, assert_between, cancel, claim_one, failed, finish_ok, job_in_state, now,
    record, retry, running,
};

/// A dead, cancelled or completed job becomes available now with a fresh
/// attempt budget: attempt 0, not finished, no cancel request, no rescues;
/// its errors are kept.
pub async fn retry_makes_a_dead_cancelled_or_completed_job_available_with_a_fresh_budget<
    H: Harness,
>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;

    // Dead after two failed attempts.
    let dead = running(s, LONG_LEASE).await;
    finish_ok(s, dead.lease, failed(1, "first", Some(Duration::ZERO))).await;
    let again = claim_one(s, &dead.queue, dead.lease.id, LONG_LEASE).await;
    finish_ok(s, again.lease, failed(2, "second", None)).await;

    // Cancelled by its worker after an operator's request, so the flag is set.
    let cancelled = running(s, LONG_LEASE).await;
    assert_eq!(cancel(s, cancelled.lease.id).await, CancelResult::Requested);
    let reason = "stop".to_string();
    finish_ok(s, cancelled.lease, FinishOutcome::Cancelled { reason }).await;

    let completed = running(s, LONG_LEASE).await;
    finish_ok(s, completed.lease, FinishOutcome::Completed).await;

    for (job, errors) in [(&dead, 2), (&cancelled, 1), (&completed, 0)] {
        let id = job.lease.id;
        let was = record(s, id).await.state;
        let before = now();
        assert!(retry(s, id).await, "retry of a {was} job");
        let after = now();
        let r = record(s, id).await;
        assert_eq!(r.state, JobState::Available, "a retried {was} job");
        assert_eq!(
            r.attempt, 0,
            "a retried {was} job has its whole budget again"
        );
        assert_eq!(r.finished_at, None, "a retried {was} job is not finished");
        assert!(
            !r.cancel_requested,
            "a retried {was} job has no cancel request"
        );
        assert_eq!(r.rescues, 0);
        assert_eq!(
            r.errors.len(),
            errors,
            "a retried {was} job keeps its errors"
        );
        assert_between(r.run_at, before, after, "run_at of a retried job");
        let next = claim_one(s, &job.queue, id, LONG_LEASE).await;
        assert_eq!(next.attempt, 1, "the first attempt of the fresh budget");
    }
}

/// Scheduled, available, retryable and running jobs are left alone
/// (`false`), and so is an unknown id.
pub async fn retry_leaves_queued_running_and_unknown_jobs_alone<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut last = JobId(0);
    for live in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Retryable,
        JobState::Running,
    ] {
        let id = job_in_state(s, live).await;
        let before = record(s, id).await;
        assert!(
            !retry(s, id).await,
            "retry of a {live} job should be refused"
        );
        assert_eq!(
            record(s, id).await,
            before,
            "a {live} job is left as it was"
        );
        last = id;
    }
    assert!(
        !retry(s, JobId(last.0 + 1_000_000)).await,
        "retry of an unknown id"
    );
}
