//! `cancel` in every state.

use std::time::Duration;

use steward_core::store::{
    CancelResult, ErrorKind, FinishOutcome, HeartbeatResult, JobId, JobState,
};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, SHORT_LEASE, assert_between, cancel, claim_from, failed, finish,
    finish_ok, heartbeat_one, job_in_state, now, prune_all_finished, record, release, rescue_until,
    running,
};

/// A scheduled, available or retryable job is cancelled at once, finished
/// now, and never claimed.
pub async fn cancel_of_a_queued_job_cancels_it_at_once<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for waiting in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Retryable,
    ] {
        let id = job_in_state(s, waiting).await;
        let queue = record(s, id).await.queue;
        let before = now();
        assert_eq!(
            cancel(s, id).await,
            CancelResult::Cancelled,
            "cancel of a {waiting} job"
        );
        let after = now();
        let r = record(s, id).await;
        assert_eq!(r.state, JobState::Cancelled, "a cancelled {waiting} job");
        let finished = r.finished_at.expect("a cancelled job is finished");
        assert_between(finished, before, after, "finished_at of a cancelled job");
        assert!(claim_from(s, &[(&queue, 10)], LONG_LEASE).await.is_empty());
    }
}

/// A running job is only flagged: it keeps running until its worker sees
/// the request on a heartbeat and finishes it as cancelled.
pub async fn cancel_of_a_running_job_asks_its_worker<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let id = job.lease.id;
    assert_eq!(cancel(s, id).await, CancelResult::Requested);
    let r = record(s, id).await;
    assert_eq!(
        r.state,
        JobState::Running,
        "the job runs until its worker stops it"
    );
    assert!(r.cancel_requested);
    assert!(
        r.worker.is_some() && r.lease_expires_at.is_some(),
        "its lease is kept"
    );
    assert_eq!(
        r.finished_at, None,
        "a cancel request does not finish the job"
    );
    assert_eq!(cancel(s, id).await, CancelResult::Requested, "asking twice");
    assert_eq!(
        heartbeat_one(s, job.lease, LONG_LEASE).await,
        HeartbeatResult::CancelRequested
    );
    let reason = "cancelled by operator".to_string();
    finish_ok(s, job.lease, FinishOutcome::Cancelled { reason }).await;
    assert_eq!(record(s, id).await.state, JobState::Cancelled);
    assert_eq!(cancel(s, id).await, CancelResult::AlreadyFinished);
}

/// A completed, dead or cancelled job is already finished, and stays as it
/// was.
pub async fn cancel_of_a_finished_job_is_already_finished<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for done in [JobState::Completed, JobState::Dead, JobState::Cancelled] {
        let id = job_in_state(s, done).await;
        let before = record(s, id).await;
        assert_eq!(
            cancel(s, id).await,
            CancelResult::AlreadyFinished,
            "cancel of a {done} job"
        );
        assert_eq!(
            record(s, id).await,
            before,
            "a {done} job is left as it was"
        );
    }
}

/// An id the store never assigned, or whose job was pruned, is not found.
pub async fn cancel_of_an_unknown_job_is_not_found<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert_eq!(
        cancel(s, JobId(1)).await,
        CancelResult::NotFound,
        "an empty store"
    );
    let id = job_in_state(s, JobState::Completed).await;
    assert_eq!(
        cancel(s, JobId(id.0 + 1_000_000)).await,
        CancelResult::NotFound
    );
    assert_eq!(prune_all_finished(s).await, 1);
    assert_eq!(cancel(s, id).await, CancelResult::NotFound, "a pruned job");
}

/// A job whose cancel was requested is never started again: an attempt that
/// ends by failing with a retry, snoozing, being released (shutdown) or
/// being rescued (its worker lost) ends the job `cancelled` instead of
/// putting it back in line, with an `ErrorKind::Cancelled` error appended.
/// Otherwise a short job that ends just before its worker's next heartbeat
/// would run again to completion after `cancel` answered `Requested`.
pub async fn a_requested_cancel_is_never_lost_when_the_attempt_ends_another_way<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let ends = ["failed with a retry", "snoozed", "released", "rescued"];
    for end in ends {
        let lease = if end == "rescued" {
            SHORT_LEASE
        } else {
            LONG_LEASE
        };
        let job = running(s, lease).await;
        let id = job.lease.id;
        assert_eq!(cancel(s, id).await, CancelResult::Requested, "{end}");
        let before = now();
        match end {
            "failed with a retry" => {
                let outcome = failed(job.attempt, "boom", Some(Duration::ZERO));
                assert!(finish(s, job.lease, outcome).await, "{end}: applied");
            }
            "snoozed" => {
                let outcome = FinishOutcome::Snoozed {
                    delay: Duration::ZERO,
                };
                assert!(finish(s, job.lease, outcome).await, "{end}: applied");
            }
            "released" => assert_eq!(release(s, vec![job.lease]).await, 1, "{end}"),
            _ => {
                let report = rescue_until(s, 5, 1).await;
                assert_eq!(
                    (report.rescued, report.dead, report.cancelled),
                    (0, 0, 1),
                    "a rescued job whose cancel was requested is counted as cancelled"
                );
            }
        }
        let after = now();
        let r = record(s, id).await;
        assert_eq!(
            r.state,
            JobState::Cancelled,
            "a job whose cancel was requested and whose attempt was {end}: {r:?}"
        );
        let finished = r.finished_at.expect("a cancelled job is finished");
        assert_between(finished, before, after, "finished_at");
        let last = r.errors.last().expect("an error is recorded");
        assert_eq!(last.kind, ErrorKind::Cancelled, "{end}: {:?}", r.errors);
        assert!(
            r.worker.is_none() && r.lease_expires_at.is_none(),
            "{end}: the lease is cleared"
        );
        assert!(
            claim_from(s, &[(&job.queue, 10)], LONG_LEASE)
                .await
                .is_empty(),
            "a job whose cancel was requested ({end}) is never claimed again"
        );
    }
}
