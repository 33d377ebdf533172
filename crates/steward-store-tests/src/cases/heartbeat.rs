//! `heartbeat`: extending, cancel requests, and fencing.

use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{CancelResult, FinishOutcome, HeartbeatResult, JobId, Lease, Store};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, SHORT_LEASE, WORKER, assert_between, cancel, finish, finish_ok,
    heartbeat_one, now, record, rescue_once, running, stale, transient,
};

/// A heartbeat moves the lease expiry to `lease` from now.
pub async fn heartbeat_extends_the_lease_of_a_running_attempt<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, Duration::from_secs(60)).await;
    let first = record(s, job.lease.id)
        .await
        .lease_expires_at
        .expect("a lease");

    let before = now();
    assert_eq!(
        heartbeat_one(s, job.lease, Duration::from_secs(3600)).await,
        HeartbeatResult::Extended
    );
    let after = now();
    let r = record(s, job.lease.id).await;
    let expires = r.lease_expires_at.expect("still leased");
    let hour = TimeDelta::hours(1);
    assert_between(
        expires,
        before + hour,
        after + hour,
        "the extended lease_expires_at",
    );
    assert!(
        expires > first,
        "the lease should be later than the claim's"
    );
    assert_eq!(r.worker.as_deref(), Some(WORKER), "the worker is unchanged");
}

/// After an operator's cancel, heartbeats answer `CancelRequested`, and
/// still extend the lease (the worker needs time to stop cleanly).
pub async fn heartbeat_answers_cancel_requested_and_still_extends<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, Duration::from_secs(60)).await;
    assert_eq!(cancel(s, job.lease.id).await, CancelResult::Requested);

    let before = now();
    assert_eq!(
        heartbeat_one(s, job.lease, Duration::from_secs(3600)).await,
        HeartbeatResult::CancelRequested
    );
    let after = now();
    let r = record(s, job.lease.id).await;
    assert!(r.cancel_requested);
    let hour = TimeDelta::hours(1);
    let expires = r.lease_expires_at.expect("still leased");
    assert_between(
        expires,
        before + hour,
        after + hour,
        "lease_expires_at after the beat",
    );
    assert_eq!(
        heartbeat_one(s, job.lease, LONG_LEASE).await,
        HeartbeatResult::CancelRequested,
        "every later heartbeat keeps answering CancelRequested"
    );
}

/// A token that is not the attempt's, an unknown job, or a job no longer
/// running answers `Lost` and writes nothing; results come one per lease,
/// in order.
pub async fn heartbeat_with_a_stale_token_or_a_finished_job_is_lost_and_writes_nothing<
    H: Harness,
>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let a = running(s, LONG_LEASE).await.lease;
    let b = running(s, LONG_LEASE).await.lease;
    let done = running(s, LONG_LEASE).await.lease;
    finish_ok(s, done, FinishOutcome::Completed).await;

    let before = record(s, a.id).await;
    assert_eq!(
        heartbeat_one(s, stale(a), Duration::from_secs(7200)).await,
        HeartbeatResult::Lost
    );
    let after = record(s, a.id).await;
    assert_eq!(
        after.lease_expires_at, before.lease_expires_at,
        "a Lost heartbeat must not move the lease"
    );
    assert_eq!(after.state, before.state);

    let unknown = Lease {
        id: JobId(b.id.0 + 1_000_000),
        token: b.token,
    };
    let batch = vec![a, stale(a), unknown, done, b];
    let answers = transient(|| s.heartbeat(batch.clone(), LONG_LEASE))
        .await
        .expect("heartbeat");
    use HeartbeatResult::{Extended, Lost};
    assert_eq!(
        answers,
        [Extended, Lost, Lost, Lost, Extended],
        "one answer per lease, in order: [a, stale a, unknown job, completed job, b]"
    );
    assert_eq!(
        record(s, done.id).await.lease_expires_at,
        None,
        "nothing written"
    );
}

/// Fencing is on the token and the running state, not on the clock: a
/// worker whose lease ran out but was not rescued yet may still heartbeat
/// (and so keep its job) and finish.
pub async fn late_heartbeat_and_finish_before_any_rescue_are_still_accepted<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, SHORT_LEASE).await;
    tokio::time::sleep(SHORT_LEASE * 4).await;
    assert_eq!(
        heartbeat_one(s, job.lease, LONG_LEASE).await,
        HeartbeatResult::Extended,
        "an expired but unrescued lease with the right token is still the attempt's"
    );
    let report = rescue_once(s, 5).await;
    assert_eq!(
        (report.rescued, report.dead),
        (0, 0),
        "the lease was extended again, there is nothing to rescue"
    );
    let other = running(s, SHORT_LEASE).await;
    tokio::time::sleep(SHORT_LEASE * 4).await;
    assert!(
        finish(s, other.lease, FinishOutcome::Completed).await,
        "a finish with the right token after expiry, before any rescue, is applied"
    );
}
