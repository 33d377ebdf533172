//! `rescue_expired`: lost workers' jobs come back, and a job that keeps
//! losing its worker dies instead of looping forever.

use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{
    ClaimRequest, ErrorKind, FinishOutcome, JobState, Lease, QueueClaim, SUSPECT_RESCUES, Store,
};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, SHORT_LEASE, WORKER, assert_between, claim_from, claim_one, enqueue_one,
    failed, finish_ok, fresh_queue, job_in, now, record, release, rescue_once, rescue_until, retry,
    running, state, transient,
};

/// The message of a rescue that is not the last allowed.
const LEASE_EXPIRED: &str = "worker lost: lease expired";

/// A live lease is not touched, however often rescue runs.
pub async fn rescue_expired_leaves_live_leases_alone<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let before = record(s, job.lease.id).await;
    for _ in 0..3 {
        let report = rescue_once(s, 1).await;
        assert_eq!((report.rescued, report.dead), (0, 0), "nothing has expired");
    }
    assert_eq!(
        record(s, job.lease.id).await,
        before,
        "a live job is left as it was"
    );
}

/// An expired lease is rescued: available now, the attempt not counted, a
/// `WorkerLost` error of that attempt appended, `rescues` 1, the lease
/// cleared; the next claim is the same attempt number again.
pub async fn rescue_expired_makes_the_job_available_without_counting_the_attempt<H: Harness>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("rescue");
    // Due an hour ago, so a rescue that forgot to move run_at shows.
    let id = enqueue_one(s, job_in(&q).run_at(now() - TimeDelta::hours(1))).await;
    let lost = claim_one(s, &q, id, SHORT_LEASE).await;
    let live = running(s, LONG_LEASE).await;

    let before = now();
    let report = rescue_until(s, 5, 1).await;
    let after = now();
    assert_eq!(
        (report.rescued, report.dead),
        (1, 0),
        "one rescued, none dead"
    );
    let r = record(s, id).await;
    assert_eq!(r.state, JobState::Available);
    assert_eq!(r.attempt, 0, "a lost attempt is not counted");
    assert_eq!(r.rescues, 1);
    assert_eq!(
        (r.worker, r.lease_expires_at),
        (None, None),
        "the lease is cleared"
    );
    assert_between(r.run_at, before, after, "run_at of a rescued job");
    assert_eq!(r.errors.len(), 1, "the rescue records an error");
    let e = &r.errors[0];
    assert_eq!(e.kind, ErrorKind::WorkerLost);
    assert_eq!(e.attempt, lost.attempt, "the error names the lost attempt");
    assert_eq!(e.message, LEASE_EXPIRED);
    assert_between(e.at, before, after, "the rescue error's time");
    assert_eq!(
        state(s, live.lease.id).await,
        JobState::Running,
        "a live lease is kept"
    );

    let next = claim_one(s, &q, id, LONG_LEASE).await;
    assert_eq!(next.attempt, 1, "the same attempt number again");
}

/// `max_rescues` rescues in a row make the job dead, with the last error
/// exactly `worker lost N times`.
pub async fn crash_loop_makes_the_job_dead_after_max_rescues_in_a_row<H: Harness>(h: &H) {
    const MAX: u32 = 3;
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("crash-loop");
    let id = enqueue_one(s, job_in(&q)).await;
    for n in 1..=MAX {
        let claimed = claim_one(s, &q, id, SHORT_LEASE).await;
        assert_eq!(claimed.attempt, 1, "rescues do not use up attempts");
        let before = now();
        let report = rescue_until(s, MAX, 1).await;
        let after = now();
        let r = record(s, id).await;
        assert_eq!(r.rescues, n, "rescue number {n} in a row");
        if n < MAX {
            assert_eq!((report.rescued, report.dead), (1, 0), "rescue {n} of {MAX}");
            assert_eq!(r.state, JobState::Available);
            continue;
        }
        assert_eq!(
            (report.rescued, report.dead),
            (0, 1),
            "rescue {MAX} of {MAX} is fatal"
        );
        assert_eq!(r.state, JobState::Dead);
        let finished = r.finished_at.expect("a dead job is finished");
        assert_between(
            finished,
            before,
            after,
            "finished_at of a crash-looping job",
        );
        assert_eq!(
            (r.worker, r.lease_expires_at),
            (None, None),
            "a dead job holds no lease"
        );
        let messages: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [LEASE_EXPIRED, LEASE_EXPIRED, "worker lost 3 times"],
            "one WorkerLost error per rescue, the last one saying how many"
        );
        assert!(r.errors.iter().all(|e| e.kind == ErrorKind::WorkerLost));
    }
    assert!(
        claim_from(s, &[(&q, 10)], LONG_LEASE).await.is_empty(),
        "dead is final"
    );
    assert!(retry(s, id).await);
    assert_eq!(
        record(s, id).await.rescues,
        0,
        "an operator's retry resets rescues"
    );
}

/// Rescues count only in a row: any applied finish (here a failure with a
/// retry, then a snooze) resets the count.
pub async fn a_normal_finish_resets_the_rescue_count<H: Harness>(h: &H) {
    const MAX: u32 = 2;
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("resets");
    let id = enqueue_one(s, job_in(&q)).await;
    let normal_finishes = [
        failed(1, "ordinary failure", Some(Duration::ZERO)),
        FinishOutcome::Snoozed {
            delay: Duration::ZERO,
        },
    ];
    for outcome in normal_finishes {
        let what = format!("{outcome:?}");
        claim_one(s, &q, id, SHORT_LEASE).await;
        rescue_until(s, MAX, 1).await;
        assert_eq!(record(s, id).await.rescues, 1);
        let lease = claim_one(s, &q, id, LONG_LEASE).await.lease;
        finish_ok(s, lease, outcome).await;
        assert_eq!(
            record(s, id).await.rescues,
            0,
            "{what} resets the rescue count"
        );
    }
    claim_one(s, &q, id, SHORT_LEASE).await;
    let report = rescue_until(s, MAX, 1).await;
    assert_eq!(
        (report.rescued, report.dead),
        (1, 0),
        "the first rescue after a normal finish is not fatal"
    );
    claim_one(s, &q, id, SHORT_LEASE).await;
    let report = rescue_until(s, MAX, 1).await;
    assert_eq!(
        (report.rescued, report.dead),
        (0, 1),
        "two in a row are fatal"
    );
    let r = record(s, id).await;
    assert_eq!(r.state, JobState::Dead);
    let last = r.errors.last().expect("errors recorded");
    assert_eq!(last.message, "worker lost 2 times");
}

/// A claim returns at most `max_suspects` suspects (jobs rescued
/// `SUSPECT_RESCUES` times in a row), over all its queues, taking them in
/// claim order and filling the rest of its limits with other jobs (a job
/// rescued once is not a suspect); each claimed job says how many rescues it
/// has. With no limit (`u32::MAX`) suspects are claimed like any job.
pub async fn a_claim_takes_at_most_max_suspects_rescued_jobs<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let (q1, q2) = (fresh_queue("suspects-a"), fresh_queue("suspects-b"));
    let both = [(q1.as_str(), 10), (q2.as_str(), 10)];
    // Three suspects: claimed with a short lease and rescued, twice.
    let mut suspects = Vec::new();
    for q in [&q1, &q1, &q2] {
        suspects.push(enqueue_one(s, job_in(q)).await);
    }
    for round in 0..SUSPECT_RESCUES {
        let claimed = claim_from(s, &both, SHORT_LEASE).await;
        assert_eq!(claimed.len(), 3);
        assert!(
            claimed.iter().all(|j| j.rescues == round),
            "no limit asked: all three claimed, with {round} rescues: {claimed:?}"
        );
        rescue_until(s, 10, 3).await;
    }
    let request = |queues: &[&String], max_suspects: u32| ClaimRequest {
        worker: WORKER.to_string(),
        queues: queues
            .iter()
            .map(|q| QueueClaim {
                queue: (*q).clone(),
                limit: 10,
            })
            .collect(),
        lease: SHORT_LEASE,
        max_suspects,
        kinds: None,
    };
    // A job rescued once is not a suspect.
    let once = enqueue_one(s, job_in(&q2)).await;
    let claimed = transient(|| s.claim(request(&[&q2], 0)))
        .await
        .expect("claim");
    let ids: Vec<_> = claimed.iter().map(|j| j.lease.id).collect();
    assert_eq!(
        ids,
        vec![once],
        "max_suspects 0: the suspect in the queue is left"
    );
    rescue_until(s, 10, 1).await;
    let fresh = [
        enqueue_one(s, job_in(&q1)).await,
        enqueue_one(s, job_in(&q2)).await,
    ];

    let claimed = transient(|| s.claim(request(&[&q1, &q2], 1)))
        .await
        .expect("claim");
    let ids: Vec<_> = claimed.iter().map(|j| j.lease.id).collect();
    assert_eq!(
        ids,
        vec![suspects[0], fresh[0], once, fresh[1]],
        "one suspect (the first in claim order) and every other job, queues in request order"
    );
    let rescues: Vec<u32> = claimed.iter().map(|j| j.rescues).collect();
    assert_eq!(
        rescues,
        vec![SUSPECT_RESCUES, 0, 1, 0],
        "each says its rescues"
    );

    let none = transient(|| s.claim(request(&[&q1, &q2], 0)))
        .await
        .expect("claim");
    assert!(
        none.is_empty(),
        "with max_suspects 0 only fresh jobs are claimed, and none is left: {none:?}"
    );
    let rest = transient(|| s.claim(request(&[&q1, &q2], u32::MAX)))
        .await
        .expect("claim");
    let ids: Vec<_> = rest.iter().map(|j| j.lease.id).collect();
    assert_eq!(
        ids,
        vec![suspects[1], suspects[2]],
        "no limit: every suspect"
    );
}

/// A suspect stays a suspect until an attempt of it ends: released by a
/// stopping worker it is still kept apart (a claim with `max_suspects` 0
/// leaves it); an operator's retry of it once it died makes it an ordinary
/// job again (its rescues start from 0).
pub async fn a_suspect_stays_one_until_an_attempt_of_it_ends<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("suspect-life");
    let id = enqueue_one(s, job_in(&queue)).await;
    for _ in 0..SUSPECT_RESCUES {
        claim_one(s, &queue, id, SHORT_LEASE).await;
        rescue_until(s, 10, 1).await;
    }
    let claim = |max_suspects: u32| {
        let request = ClaimRequest {
            worker: WORKER.to_string(),
            queues: vec![QueueClaim {
                queue: queue.clone(),
                limit: 10,
            }],
            lease: LONG_LEASE,
            max_suspects,
            kinds: None,
        };
        async move {
            transient(|| s.claim(request.clone()))
                .await
                .expect("claim")
                .into_iter()
                .map(|j| j.lease)
                .collect::<Vec<_>>()
        }
    };
    let ids = |leases: &[Lease]| leases.iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&claim(0).await),
        vec![],
        "a suspect, left by max_suspects 0"
    );
    let taken = claim(1).await;
    assert_eq!(ids(&taken), vec![id], "taken when one is allowed");
    // Released by a stopping worker: still a suspect.
    assert_eq!(release(s, taken).await, 1);
    assert_eq!(ids(&claim(0).await), vec![], "released, still a suspect");
    let taken = claim(1).await;
    assert_eq!(ids(&taken), vec![id], "and taken when allowed");
    // It dies of a failure; an operator's retry makes it ordinary again.
    finish_ok(s, taken[0], failed(1, "gave up", None)).await;
    assert_eq!(state(s, id).await, JobState::Dead);
    assert!(retry(s, id).await);
    assert_eq!(
        ids(&claim(0).await),
        vec![id],
        "retried by an operator: an ordinary job, claimed with max_suspects 0"
    );
}
