//! `claim`: which jobs, in which order, and what a claim writes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use steward_core::store::{
    ClaimRequest, FinishOutcome, HeartbeatResult, JobId, JobState, NewJob, QueueClaim, Store,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, PATIENCE, WORKER, assert_between, assert_same_json, cancel,
    claim_from, claim_one, enqueue, enqueue_one, failed, finish_ok, fresh_queue, heartbeat_one,
    job_in, ms, now, record, release, stale, state, transient,
};

/// An empty queue, an unknown queue, or a limit of 0 claims nothing.
pub async fn claim_from_an_empty_or_unknown_queue_or_with_limit_zero_returns_nothing<H: Harness>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(
        claim_from(s, &[("default", 10)], LONG_LEASE)
            .await
            .is_empty()
    );
    let id = enqueue_one(s, job_in("busy")).await;
    assert!(
        claim_from(s, &[("elsewhere", 10)], LONG_LEASE)
            .await
            .is_empty(),
        "a claim must take only from the queues it names"
    );
    assert!(
        claim_from(s, &[("busy", 0)], LONG_LEASE).await.is_empty(),
        "a limit of 0 claims nothing"
    );
    assert_eq!(state(s, id).await, JobState::Available);
}

/// Only due jobs are claimed: scheduled, available or retryable with
/// `run_at <= now`; never a running, finished or not-yet-due job.
pub async fn claim_takes_only_due_jobs_that_are_scheduled_available_or_retryable<H: Harness>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = "due";
    let hour = TimeDelta::hours(1);
    let put = |outcome: Option<FinishOutcome>| {
        let store = s;
        async move {
            let id = enqueue_one(store, job_in(q)).await;
            let lease = claim_one(store, q, id, LONG_LEASE).await.lease;
            if let Some(outcome) = outcome {
                finish_ok(store, lease, outcome).await;
            }
            id
        }
    };
    let running = put(None).await;
    let retry_later = put(Some(failed(1, "later", Some(HOUR)))).await;
    let completed = put(Some(FinishOutcome::Completed)).await;
    let dead = put(Some(failed(1, "dead", None))).await;
    let cancelled = enqueue_one(s, job_in(q)).await;
    cancel(s, cancelled).await;
    let scheduled = enqueue_one(s, job_in(q).run_at(now() + hour)).await;
    let retry_due = put(Some(failed(1, "due", Some(Duration::ZERO)))).await;
    let available = enqueue_one(s, job_in(q)).await;

    let got: Vec<JobId> = claim_from(s, &[(q, 100)], LONG_LEASE)
        .await
        .iter()
        .map(|c| c.lease.id)
        .collect();
    assert_eq!(
        got,
        vec![retry_due, available],
        "only the due retryable job and the available one should be claimed (not running \
         {running}, retry-later {retry_later}, completed {completed}, dead {dead}, cancelled \
         {cancelled}, scheduled {scheduled})"
    );
}

/// A scheduled job is claimed once its `run_at` has passed, and not before.
pub async fn scheduled_job_becomes_claimable_once_its_run_at_passes<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("sched");
    let run_at = ms(now() + TimeDelta::milliseconds(400));
    let id = enqueue_one(s, job_in(&q).run_at(run_at)).await;
    assert_eq!(state(s, id).await, JobState::Scheduled);

    let deadline = Instant::now() + PATIENCE;
    loop {
        let claimed = claim_from(s, &[(&q, 10)], LONG_LEASE).await;
        // The test reads its clock after the claim: a store that claimed at
        // its own now >= run_at leaves the test's clock past run_at too.
        let seen_at = now();
        if let Some(job) = claimed.first() {
            assert_eq!(job.lease.id, id);
            assert!(
                seen_at >= run_at - TimeDelta::milliseconds(5),
                "the job was claimed by {seen_at}, before its run_at {run_at}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a job scheduled 400 ms ahead was still not claimable after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(state(s, id).await, JobState::Running);
}

/// A job enqueued with a `delay` is claimed once the delay has passed on
/// the store's clock (at its `run_at`, the store's now + delay), not before.
pub async fn delayed_job_becomes_claimable_once_its_delay_passes<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("delayed");
    let id = enqueue_one(s, job_in(&q).delay(Duration::from_millis(400))).await;
    let r = record(s, id).await;
    assert_eq!(r.state, JobState::Scheduled, "a delay of 400 ms");
    let due_at = r.run_at;

    let deadline = Instant::now() + PATIENCE;
    loop {
        let claimed = claim_from(s, &[(&q, 10)], LONG_LEASE).await;
        let seen_at = now();
        if let Some(job) = claimed.first() {
            assert_eq!(job.lease.id, id);
            assert!(
                seen_at >= due_at - TimeDelta::milliseconds(5),
                "the job was claimed by {seen_at}, before its delay ran out at {due_at}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a job delayed 400 ms was still not claimable after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Queues are served in the order given, each up to its own limit, and the
/// claimed jobs come back in that order.
pub async fn claim_serves_queues_in_the_order_given_up_to_each_limit<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut jobs = Vec::new();
    for (queue, n) in [("first", 3), ("second", 3), ("third", 2)] {
        for _ in 0..n {
            jobs.push(job_in(queue));
        }
    }
    enqueue(s, jobs).await;
    let claimed = claim_from(
        s,
        &[("second", 2), ("first", 5), ("empty", 3), ("third", 1)],
        LONG_LEASE,
    )
    .await;
    let queues: Vec<&str> = claimed.iter().map(|c| c.queue.as_str()).collect();
    assert_eq!(
        queues,
        ["second", "second", "first", "first", "first", "third"],
        "two from `second`, all three of `first`, one of `third`, in the order asked"
    );
    let c = crate::support::counts(s).await;
    assert_eq!((c.running, c.available), (6, 2));
}

/// Within a queue: priority ascending, then `run_at`, then id.
pub async fn claim_orders_a_queue_by_priority_then_run_at_then_id<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = "ordered";
    let base = ms(now() - TimeDelta::hours(1));
    let at = |secs| base + TimeDelta::seconds(secs);
    let job = |priority, run_at| job_in(q).priority(priority).run_at(run_at);
    let out = enqueue(
        s,
        vec![
            job(0, at(10)),  // a
            job(-1, at(30)), // b
            job(0, at(0)),   // c
            job(0, at(10)),  // d: same priority and run_at as a, later id
            job(5, at(-10)), // e
            job(-1, at(30)), // f: same as b, later id
        ],
    )
    .await;
    let id = |i: usize| out[i].id;
    let expected = [id(1), id(5), id(2), id(0), id(3), id(4)]; // b f c a d e

    let first: Vec<JobId> = claim_from(s, &[(q, 3)], LONG_LEASE)
        .await
        .iter()
        .map(|c| c.lease.id)
        .collect();
    assert_eq!(
        first,
        expected[..3],
        "the first three by (priority, run_at, id)"
    );
    let rest: Vec<JobId> = claim_from(s, &[(q, 10)], LONG_LEASE)
        .await
        .iter()
        .map(|c| c.lease.id)
        .collect();
    assert_eq!(rest, expected[3..], "the rest, in the same order");
}

/// A claim makes the job running, counts the attempt, names the worker, sets
/// `attempted_at` and a lease of the length asked, and returns all of it.
pub async fn claim_marks_the_job_running_with_attempt_worker_and_lease<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let payload = r#"{"invoice":42,"lines":["a","b"]}"#;
    let id = enqueue_one(
        s,
        NewJob::new("bill", payload)
            .queue("work")
            .max_attempts(3)
            .timeout(Duration::from_secs(45)),
    )
    .await;
    let created_at = record(s, id).await.created_at;
    let lease = Duration::from_secs(300);
    let request = ClaimRequest {
        worker: "host-7/4242".to_string(),
        queues: vec![QueueClaim {
            queue: "work".to_string(),
            limit: 10,
        }],
        lease,
        max_suspects: u32::MAX,
        kinds: None,
    };
    let before = now();
    let claimed = transient(|| s.claim(request.clone())).await.expect("claim");
    let after = now();

    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.lease.id, id);
    assert_eq!(c.kind, "bill");
    assert_eq!(c.queue, "work");
    assert_same_json(&c.payload, payload, "the claimed payload");
    assert_eq!(c.attempt, 1, "the first attempt is number 1");
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.checkpoint, None);
    assert_eq!(c.timeout, Some(Duration::from_secs(45)));
    assert_eq!(
        c.created_at, created_at,
        "ClaimedJob::created_at is the enqueue time"
    );

    let r = record(s, id).await;
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.attempt, 1);
    assert_eq!(r.worker.as_deref(), Some("host-7/4242"));
    let attempted_at = r.attempted_at.expect("attempted_at is set by a claim");
    assert_between(attempted_at, before, after, "attempted_at");
    let expires = r
        .lease_expires_at
        .expect("a running job has a lease expiry");
    let length = TimeDelta::from_std(lease).expect("in range");
    assert_between(expires, before + length, after + length, "lease_expires_at");
    assert_eq!(r.finished_at, None);
}

/// Every claim writes a new token: different per job, different from the
/// previous attempt's, and the previous attempt's token is fenced out.
pub async fn each_claim_gets_a_fresh_lease_token<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = "tokens";
    enqueue(s, vec![job_in(q), job_in(q), job_in(q)]).await;
    let first = claim_from(s, &[(q, 10)], LONG_LEASE).await;
    assert_eq!(first.len(), 3);
    let tokens: HashSet<_> = first.iter().map(|c| c.lease.token).collect();
    assert_eq!(
        tokens.len(),
        3,
        "three claimed jobs should have three tokens"
    );

    let leases: Vec<_> = first.iter().map(|c| c.lease).collect();
    assert_eq!(release(s, leases.clone()).await, 3);
    let second = claim_from(s, &[(q, 10)], LONG_LEASE).await;
    assert_eq!(second.len(), 3);
    for old in &leases {
        let new = second
            .iter()
            .find(|c| c.lease.id == old.id)
            .expect("every released job is claimed again");
        assert_ne!(
            new.lease.token, old.token,
            "job {}: a new claim must not reuse the last attempt's token",
            old.id
        );
        assert_eq!(
            heartbeat_one(s, *old, LONG_LEASE).await,
            HeartbeatResult::Lost,
            "job {}: the previous attempt's token must be fenced out",
            old.id
        );
        assert_eq!(
            heartbeat_one(s, new.lease, LONG_LEASE).await,
            HeartbeatResult::Extended
        );
        assert_eq!(
            heartbeat_one(s, stale(new.lease), LONG_LEASE).await,
            HeartbeatResult::Lost,
            "job {}: a token the store did not write must be fenced out",
            old.id
        );
    }
}

/// A claim with `kinds` takes only jobs of those kinds, in claim order;
/// jobs of other kinds are left exactly as they were (no attempt counted),
/// for a worker that runs them. `None` takes any kind.
pub async fn claim_takes_only_the_kinds_asked_for<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("kinds");
    let new_kind = enqueue_one(s, NewJob::new("new_kind", "{}").queue(&q)).await;
    let known = enqueue_one(s, NewJob::new("known", "{}").queue(&q)).await;
    let also = enqueue_one(s, NewJob::new("also_known", "{}").queue(&q)).await;
    let before = record(s, new_kind).await;
    let request = |kinds: Option<Vec<String>>| ClaimRequest {
        worker: WORKER.to_string(),
        queues: vec![QueueClaim {
            queue: q.clone(),
            limit: 10,
        }],
        lease: LONG_LEASE,
        max_suspects: u32::MAX,
        kinds,
    };
    let only = Some(vec!["known".to_string(), "also_known".to_string()]);
    let claimed = transient(|| s.claim(request(only.clone())))
        .await
        .expect("claim");
    let ids: Vec<JobId> = claimed.iter().map(|c| c.lease.id).collect();
    assert_eq!(
        ids,
        vec![known, also],
        "only the kinds asked for, in claim order"
    );
    assert_eq!(
        record(s, new_kind).await,
        before,
        "a job of another kind is left exactly as it was"
    );
    let none = transient(|| s.claim(request(Some(Vec::new()))))
        .await
        .expect("claim");
    assert!(none.is_empty(), "no kinds: nothing claimed");
    let any = transient(|| s.claim(request(None))).await.expect("claim");
    let ids: Vec<JobId> = any.iter().map(|c| c.lease.id).collect();
    assert_eq!(ids, vec![new_kind], "None: any kind");
}
