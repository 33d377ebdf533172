//! `finish`: each outcome, batches, and finishing twice.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use steward_core::store::{ErrorKind, Finish, FinishOutcome, JobState, Store};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, PATIENCE, assert_between, assert_same_ms, attempt_error, claim_from,
    claim_one, enqueue_one, failed, finish, finish_ok, fresh_queue, job_in, now, record, running,
    slack, stale, state, transient,
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

/// `Failed` with `retry_in`: retryable, `run_at` = the store's now +
/// `retry_in`, the error appended, not claimable before then; and claimable
/// at once, as attempt 2, with a `retry_in` of zero.
pub async fn finish_failed_with_retry_in_is_retryable_and_claimable_only_once_it_passes<
    H: Harness,
>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("retry");
    let later = enqueue_one(s, job_in(&q)).await;
    let lease = claim_one(s, &q, later, LONG_LEASE).await.lease;
    let error = attempt_error(1, ErrorKind::Error, "smtp: connection refused");
    let outcome = FinishOutcome::Failed {
        error: error.clone(),
        retry_in: Some(HOUR),
    };
    let before = now();
    finish_ok(s, lease, outcome).await;
    let after = now();

    let r = record(s, later).await;
    assert_eq!(r.state, JobState::Retryable);
    let hour = TimeDelta::hours(1);
    assert_between(
        r.run_at,
        before + hour,
        after + hour,
        "run_at of a job retrying in an hour (the store's now + 1 h)",
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
    finish_ok(s, lease, failed(1, "once", Some(Duration::ZERO))).await;
    assert_eq!(state(s, due).await, JobState::Retryable);
    let again = claim_one(s, &q, due, LONG_LEASE).await;
    assert_eq!(again.attempt, 2, "the retry is the second attempt");
}

/// A job failed with a `retry_in` of a moment is claimed again once that
/// moment has passed, not before.
pub async fn failed_job_is_claimed_again_after_its_retry_in_passes<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    finish_ok(
        s,
        job.lease,
        failed(1, "soon", Some(Duration::from_millis(400))),
    )
    .await;
    let retry_at = record(s, job.lease.id).await.run_at;

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

/// `Failed` without `retry_in`: dead, `finished_at` now, the error
/// appended, the lease cleared, never claimed again.
pub async fn finish_failed_without_retry_in_makes_the_job_dead<H: Harness>(h: &H) {
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

/// `Snoozed`: scheduled at the store's now + `delay`, and the attempt is
/// given back.
pub async fn finish_snoozed_does_not_use_up_an_attempt<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let before = now();
    finish_ok(s, job.lease, FinishOutcome::Snoozed { delay: HOUR }).await;
    let after = now();
    let r = record(s, job.lease.id).await;
    assert_eq!(r.state, JobState::Scheduled, "snoozed for an hour");
    let hour = TimeDelta::hours(1);
    assert_between(
        r.run_at,
        before + hour,
        after + hour,
        "run_at of a job snoozed for an hour (the store's now + 1 h)",
    );
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
}

/// `Snoozed` with a zero delay: available at once, due now, and the next
/// attempt has the same number.
pub async fn snooze_with_zero_delay_is_available_at_once<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let before = now();
    let delay = Duration::ZERO;
    finish_ok(s, job.lease, FinishOutcome::Snoozed { delay }).await;
    let after = now();
    let r = record(s, job.lease.id).await;
    assert_eq!(r.state, JobState::Available, "snoozed for no time at all");
    assert_between(r.run_at, before, after, "run_at of a zero snooze");
    assert_eq!(r.attempt, 0);
    let again = claim_one(s, &job.queue, job.lease.id, LONG_LEASE).await;
    assert_eq!(
        again.attempt, 1,
        "the attempt after a snooze has the same number"
    );
}

/// `retry_in` and a snooze's `delay` count from the store's clock: in one
/// batch, the retry and the snooze run that long after the `finished_at`
/// the store wrote for a completion (its own now), whatever the caller's
/// clock says.
pub async fn retry_in_and_snooze_delay_count_from_the_store_clock<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let done = running(s, LONG_LEASE).await.lease;
    let retried = running(s, LONG_LEASE).await.lease;
    let snoozed = running(s, LONG_LEASE).await.lease;
    let batch = vec![
        Finish {
            lease: done,
            outcome: FinishOutcome::Completed,
        },
        Finish {
            lease: retried,
            outcome: failed(1, "later", Some(HOUR)),
        },
        Finish {
            lease: snoozed,
            outcome: FinishOutcome::Snoozed { delay: 2 * HOUR },
        },
    ];
    let applied = transient(|| s.finish(batch.clone())).await.expect("finish");
    assert_eq!(applied, [true, true, true]);
    let store_now = record(s, done.id)
        .await
        .finished_at
        .expect("a completed job has finished_at");
    let close = |actual: chrono::DateTime<chrono::Utc>, offset: TimeDelta, what: &str| {
        let off_by = (actual - (store_now + offset)).abs();
        assert!(
            off_by <= slack(),
            "{what} should be the store's now ({store_now}) + {offset}, but is {actual}"
        );
    };
    close(
        record(s, retried.id).await.run_at,
        TimeDelta::hours(1),
        "run_at of a retry in an hour",
    );
    close(
        record(s, snoozed.id).await.run_at,
        TimeDelta::hours(2),
        "run_at of a snooze of two hours",
    );
}

/// A `retry_in` or snooze `delay` longer than any time the store can hold
/// is not an error: the job waits until the latest time the store holds.
pub async fn absurd_retry_and_snooze_delays_saturate_instead_of_failing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let outcomes = [
        (
            failed(1, "come back never", Some(Duration::MAX)),
            JobState::Retryable,
        ),
        (
            FinishOutcome::Snoozed {
                delay: Duration::MAX,
            },
            JobState::Scheduled,
        ),
    ];
    for (outcome, expected) in outcomes {
        let what = format!("{outcome:?}");
        let job = running(s, LONG_LEASE).await;
        finish_ok(s, job.lease, outcome).await;
        let r = record(s, job.lease.id).await;
        assert_eq!(r.state, expected, "after {what}");
        assert!(
            r.run_at > now() + TimeDelta::days(365 * 1000),
            "after {what}, run_at should be the store's latest time, not {}",
            r.run_at
        );
        assert!(
            claim_from(s, &[(&job.queue, 10)], LONG_LEASE)
                .await
                .is_empty(),
            "after {what}, the job is not due"
        );
    }
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
