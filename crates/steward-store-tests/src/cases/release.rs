//! `release`: shutdown hands running jobs back without counting them.

use chrono::TimeDelta;
use steward_core::store::{FinishOutcome, JobId, JobState, Lease};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, assert_between, claim_one, enqueue_one, finish_ok, fresh_queue, job_in,
    now, record, release, running, stale, state,
};

/// A released job is available again now, its attempt not counted, its
/// `interrupted` count up by one, its lease cleared; the next claim is the
/// same attempt number again.
pub async fn release_makes_the_job_available_without_counting_the_attempt<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("release");
    // Due an hour ago, so a release that forgot to move run_at shows.
    let id = enqueue_one(s, job_in(&q).run_at(now() - TimeDelta::hours(1))).await;
    let first = claim_one(s, &q, id, LONG_LEASE).await;
    assert_eq!(first.attempt, 1);

    let before = now();
    assert_eq!(release(s, vec![first.lease]).await, 1);
    let after = now();
    let r = record(s, id).await;
    assert_eq!(r.state, JobState::Available);
    assert_eq!(r.attempt, 0, "an interrupted attempt is not counted");
    assert_eq!(r.interrupted, 1);
    assert_between(r.run_at, before, after, "run_at of a released job");
    assert_eq!(
        (r.worker, r.lease_expires_at),
        (None, None),
        "the lease is cleared"
    );
    assert!(r.errors.is_empty(), "an interruption is not an error");
    assert_eq!(r.finished_at, None);

    let second = claim_one(s, &q, id, LONG_LEASE).await;
    assert_eq!(second.attempt, 1, "the same attempt number again");
    assert_eq!(release(s, vec![second.lease]).await, 1);
    assert_eq!(record(s, id).await.interrupted, 2);
}

/// Each lease of a release batch is fenced on its own: a stale token, an
/// unknown job, a lease already released or a finished job is not counted
/// and not touched.
pub async fn release_is_fenced_per_item<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let a = running(s, LONG_LEASE).await.lease;
    let b = running(s, LONG_LEASE).await.lease;
    let done = running(s, LONG_LEASE).await.lease;
    finish_ok(s, done, FinishOutcome::Completed).await;
    let unknown = Lease {
        id: JobId(done.id.0 + 1_000_000),
        token: done.token,
    };

    assert_eq!(
        release(s, vec![a, stale(b), unknown, done]).await,
        1,
        "only `a` holds its lease"
    );
    assert_eq!(state(s, a.id).await, JobState::Available);
    let rb = record(s, b.id).await;
    assert_eq!(
        (rb.state, rb.interrupted),
        (JobState::Running, 0),
        "b is untouched"
    );
    assert_eq!(
        state(s, done.id).await,
        JobState::Completed,
        "a finished job is untouched"
    );
    assert_eq!(release(s, vec![a]).await, 0, "a lease is released once");
    assert_eq!(record(s, a.id).await.interrupted, 1);
}
