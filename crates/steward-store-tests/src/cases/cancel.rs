//! `cancel` in every state.

use steward_core::store::{CancelResult, FinishOutcome, HeartbeatResult, JobId, JobState};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, assert_between, cancel, claim_from, finish_ok, heartbeat_one,
    job_in_state, now, prune_all_finished, record, running,
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
