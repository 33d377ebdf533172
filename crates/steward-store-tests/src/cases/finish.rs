//! `finish`: each outcome, batches, and finishing twice.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use steward_core::store::{ErrorKind, Finish, FinishOutcome, JobState, Store};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, PATIENCE, assert_between, assert_same_ms, attempt_error, claim_from,
    claim_one, enqueue_one, failed, finish, finish_ok, fresh_queue, job_in, ms, now, record,
    running, stale, state, transient,
};

/// `Completed`: state completed, `finished_at` now, the lease cleared, the
/// attempt still counted.
pub async fn finish_completed_records_completion_and_clears_the_lease<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let before = now();
    finish_ok(s, job.lease, FinishOutcome::Completed).await;
    let after = now();
    let r = record(s, job.lease.id).await;
    assert_eq!(r.state, JobState::Completed);
    assert_between(
        r.finished_at.expect("finished_at is set on completion"),
        before,
        after,
        "finished_at",
    );
    assert_eq!(r.worker, None, "the lease's worker is cleared");
    assert_eq!(r.lease_expires_at, None, "the lease's expiry is cleared");
    assert_eq!(r.attempt, 1, "a completed attempt still counts");
    assert!(r.errors.is_empty());
    assert_eq!(r.rescues, 0);
}

/// `Failed` with a retry time: retryable, `run_at` = the retry time, the
/// error appended, not claimable before the retry time; and claimable at
/// once, as attempt 2, when the retry time has passed.
pub async fn finish_failed_with_retry_at_is_retryable_and_claimable_only_from_retry_at<
    H: Harness,
>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("retry");
    let later = enqueue_one(s, job_in(&q)).await;
    let lease = claim_one(s, &q, later, LONG_LEASE).await.lease;
    let retry_at = ms(now() + TimeDelta::hours(1));
    let error = attempt_error(1, ErrorKind::Error, "smtp: connection refused");
    let outcome = FinishOutcome::Failed {
        error: error.clone(),
        retry_at: Some(retry_at),
    };
    finish_ok(s, lease, outcome).await;

    let r = record(s, later).await;
    assert_eq!(r.state, JobState::Retryable);
    assert_same_ms(
        r.run_at,
        retry_at,
        "run_at of a retryable job is its retry time",
    );
    assert_eq!(r.errors.len(), 1, "the attempt's error is appended");
    assert_eq!(
        (
            r.errors[0].attempt,
            r.errors[0].kind,
            r.errors[0].message.as_str()
        ),
        (1, ErrorKind::Error, "smtp: connection refused")
    );
    assert_same_ms(r.errors[0].at, error.at, "the error's time as given");
    assert_eq!(r.finished_at, None, "retryable is not finished");
    assert_eq!(
        (r.worker, r.lease_expires_at),
        (None, None),
        "the lease is cleared"
    );
    assert_eq!(r.attempt, 1, "a failed attempt counts");
    assert!(
        claim_from(s, &[(&q, 10)], LONG_LEASE).await.is_empty(),
        "a job retrying in an hour must not be claimed now"
    );

    let due = enqueue_one(s, job_in(&q)).await;
    let lease = claim_one(s, &q, due, LONG_LEASE).await.lease;
    finish_ok(
        s,
        lease,
        failed(1, "once", Some(now() - TimeDelta::seconds(1))),
    )
    .await;
    assert_eq!(state(s, due).await, JobState::Retryable);
    let again = claim_one(s, &q, due, LONG_LEASE).await;
    assert_eq!(again.attempt, 2, "the retry is the second attempt");
}

/// A job failed with a retry time a moment ahead is claimed again once that
/// time has passed, not before.
pub async fn failed_job_is_claimed_again_after_its_retry_at_passes<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let retry_at = ms(now() + TimeDelta::milliseconds(400));
    finish_ok(s, job.lease, failed(1, "soon", Some(retry_at))).await;

    let deadline = Instant::now() + PATIENCE;
    loop {
        let claimed = claim_from(s, &[(&job.queue, 10)], LONG_LEASE).await;
        let seen_at = now();
        if let Some(again) = claimed.first() {
            assert_eq!(again.lease.id, job.lease.id);
            assert_eq!(again.attempt, 2);
            assert!(
                seen_at >= retry_at - TimeDelta::milliseconds(5),
                "claimed again by {seen_at}, before its retry time {retry_at}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a job retrying 400 ms ahead was not claimable after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `Failed` without a retry time: dead, `finished_at` now, the error
/// appended, the lease cleared, never claimed again.
pub async fn finish_failed_without_retry_at_makes_the_job_dead<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let before = now();
    finish_ok(s, job.lease, failed(1, "payment declined", None)).await;
    let after = now();
    let r = record(s, job.lease.id).await;
    assert_eq!(r.state, JobState::Dead);
    assert_between(
        r.finished_at.expect("a dead job is finished"),
        before,
        after,
        "finished_at",
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].message, "payment declined");
    assert_eq!(
        (r.worker, r.lease_expires_at),
        (None, None),
        "the lease is cleared"
    );
    assert!(
        claim_from(s, &[(&job.queue, 10)], LONG_LEASE)
            .await
            .is_empty()
    );
}

/// `Snoozed`: scheduled at `until` (available if `until` has passed), and
/// the attempt is given back.
pub async fn finish_snoozed_does_not_use_up_an_attempt<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let until = ms(now() + TimeDelta::hours(1));
    finish_ok(s, job.lease, FinishOutcome::Snoozed { until }).await;
    let r = record(s, job.lease.id).await;
    assert_eq!(r.state, JobState::Scheduled, "snoozed for an hour");
    assert_same_ms(r.run_at, until, "run_at of a snoozed job");
    assert_eq!(r.attempt, 0, "a snooze gives the attempt back");
    assert!(r.errors.is_empty(), "a snooze is not an error");
    assert_eq!(r.finished_at, None);
    assert_eq!(
        (r.worker, r.lease_expires_at),
        (None, None),
        "the lease is cleared"
    );
    assert!(
        claim_from(s, &[(&job.queue, 10)], LONG_LEASE)
            .await
            .is_empty()
    );

    let other = running(s, LONG_LEASE).await;
    let until = ms(now() - TimeDelta::seconds(1));
    finish_ok(s, other.lease, FinishOutcome::Snoozed { until }).await;
    let r = record(s, other.lease.id).await;
    assert_eq!(
        r.state,
        JobState::Available,
        "snoozed until a time already past"
    );
    assert_eq!(r.attempt, 0);
    let again = claim_one(s, &other.queue, other.lease.id, LONG_LEASE).await;
    assert_eq!(
        again.attempt, 1,
        "the attempt after a snooze has the same number"
    );
}

/// `Cancelled`: state cancelled, `finished_at` now, the reason appended as a
/// `Cancelled` error of this attempt.
pub async fn finish_cancelled_records_the_reason_as_a_cancelled_error<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let reason = "invoice voided by operator";
    let before = now();
    let outcome = FinishOutcome::Cancelled {
        reason: reason.to_string(),
    };
    finish_ok(s, job.lease, outcome).await;
    let after = now();
    let r = record(s, job.lease.id).await;
    assert_eq!(r.state, JobState::Cancelled);
    assert_between(
        r.finished_at.expect("cancelled is final"),
        before,
        after,
        "finished_at",
    );
    assert_eq!(r.errors.len(), 1, "the reason is recorded as an error");
    let e = &r.errors[0];
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(e.message, reason);
    assert_eq!(e.attempt, 1, "the cancelled attempt");
    assert_between(e.at, before, after, "the cancel error's time");
    assert_eq!(
        (r.worker, r.lease_expires_at),
        (None, None),
        "the lease is cleared"
    );
}

/// In one batch, each item is fenced by its own lease: a stale item is
/// refused (`false`) while the others are applied.
pub async fn finish_applies_each_item_of_a_batch_with_its_own_fence<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let a = running(s, LONG_LEASE).await.lease;
    let b = running(s, LONG_LEASE).await.lease;
    let c = running(s, LONG_LEASE).await.lease;
    let batch = vec![
        Finish {
            lease: a,
            outcome: FinishOutcome::Completed,
        },
        Finish {
            lease: stale(b),
            outcome: FinishOutcome::Completed,
        },
        Finish {
            lease: c,
            outcome: failed(1, "no", None),
        },
    ];
    let applied = transient(|| s.finish(batch.clone())).await.expect("finish");
    assert_eq!(
        applied,
        [true, false, true],
        "one answer per item, in order"
    );
    assert_eq!(state(s, a.id).await, JobState::Completed);
    let rb = record(s, b.id).await;
    assert_eq!(rb.state, JobState::Running, "the refused item is untouched");
    assert!(rb.errors.is_empty() && rb.finished_at.is_none());
    assert_eq!(state(s, c.id).await, JobState::Dead);
}

/// Once an attempt is finished its lease is gone: a second finish with it is
/// refused and changes nothing.
pub async fn a_finished_attempt_cannot_be_finished_again<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    finish_ok(s, job.lease, FinishOutcome::Completed).await;
    let before = record(s, job.lease.id).await;
    assert!(!finish(s, job.lease, FinishOutcome::Completed).await);
    assert!(!finish(s, job.lease, failed(1, "late", None)).await);
    let reason = "late".to_string();
    assert!(!finish(s, job.lease, FinishOutcome::Cancelled { reason }).await);
    let after = record(s, job.lease.id).await;
    assert_eq!(after, before, "refused finishes must write nothing");
}
