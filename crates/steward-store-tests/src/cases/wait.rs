//! `wait_for_work`: a worker's idle wait ends by `max_wait`, and early when
//! this store value made work due.

use std::future::Future;
use std::time::{Duration, Instant};

use steward_core::store::{FinishOutcome, Store};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, PATIENCE, SHORT_LEASE, claim_from, claim_one, enqueue_one, failed,
    finish_ok, fresh_queue, job_in, release, rescue_once, retry, running,
};

/// What the waits in these cases ask for: long enough that a wait which
/// only ends at `max_wait` is told apart from an early wake-up.
const LONG_WAIT: Duration = Duration::from_secs(30);

/// Waits on `store` while `act` runs (after a short pause, so the waiter is
/// waiting); asserts the wait ended well before [`LONG_WAIT`].
async fn assert_wakes<S: Store, F: Future<Output = ()>>(store: &S, what: &str, act: F) {
    let started = Instant::now();
    // `join!` polls the wait first, so it is registered before `act` runs.
    let ((), ()) = tokio::join!(store.wait_for_work(LONG_WAIT), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        act.await;
    });
    let waited = started.elapsed();
    assert!(
        waited < LONG_WAIT / 2,
        "wait_for_work({LONG_WAIT:?}) should return soon after {what} through the same store \
         value, but took {waited:?}"
    );
}

/// With nothing happening, the wait ends by `max_wait` (spurious early
/// wake-ups are allowed, so only the upper bound is checked).
pub async fn wait_for_work_returns_by_max_wait_when_nothing_happens<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    for max_wait in [Duration::from_millis(50), Duration::from_millis(300)] {
        let started = Instant::now();
        let waited =
            tokio::time::timeout(max_wait + PATIENCE, f.store.wait_for_work(max_wait)).await;
        assert!(
            waited.is_ok(),
            "wait_for_work({max_wait:?}) was still waiting after {:?}",
            started.elapsed()
        );
    }
}

/// An enqueue through the same store value wakes a waiting worker.
pub async fn wait_for_work_returns_early_after_an_enqueue<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert_wakes(s, "an enqueue", async {
        enqueue_one(s, job_in("default")).await;
    })
    .await;
}

/// An operator's retry, a release, a snooze and a rescue through the same
/// store value each wake a waiting worker.
pub async fn wait_for_work_returns_early_after_retry_release_snooze_and_rescue<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;

    let dead = running(s, LONG_LEASE).await;
    finish_ok(s, dead.lease, failed(1, "fatal", None)).await;
    assert_wakes(s, "a retry", async {
        assert!(retry(s, dead.lease.id).await);
    })
    .await;

    let job = running(s, LONG_LEASE).await;
    assert_wakes(s, "a release", async {
        assert_eq!(release(s, vec![job.lease]).await, 1);
    })
    .await;

    let job = running(s, LONG_LEASE).await;
    assert_wakes(s, "a snooze", async {
        let delay = Duration::ZERO;
        finish_ok(s, job.lease, FinishOutcome::Snoozed { delay }).await;
    })
    .await;

    running(s, SHORT_LEASE).await;
    tokio::time::sleep(SHORT_LEASE * 4).await;
    assert_wakes(s, "a rescue", async {
        let report = rescue_once(s, 5).await;
        assert_eq!(report.rescued, 1, "the expired lease is rescued");
    })
    .await;
}

/// Every worker waiting on one store value wakes, not just one:
/// `wait_for_work` takes no queue, so a single woken worker might serve
/// other queues (or be stopping) and leave the new job to the poll. The
/// others' empty claims are the price of never stranding work.
pub async fn wait_for_work_wakes_every_waiting_worker<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    // Wake-ups left over from setting up are spurious; use them up.
    s.wait_for_work(Duration::from_millis(1)).await;
    s.wait_for_work(Duration::from_millis(1)).await;
    let started = Instant::now();
    let ((), (), ()) = tokio::join!(
        s.wait_for_work(LONG_WAIT),
        s.wait_for_work(LONG_WAIT),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            enqueue_one(s, job_in("default")).await;
        }
    );
    let waited = started.elapsed();
    assert!(
        waited < LONG_WAIT / 2,
        "two workers waited on one store and one enqueue woke only one of them: the other \
         waited {waited:?} (of {LONG_WAIT:?})"
    );
}

/// How far ahead the delayed work of [`wait_for_work_returns_when_delayed_work_comes_due`]
/// is due: short, but far longer than a commit.
const DUE_IN: Duration = Duration::from_secs(1);

/// Waits (as a worker does, claiming after each wake-up) until the job
/// `id` in `queue` can be claimed; asserts it took well under
/// [`LONG_WAIT`], i.e. the wait ended when the job came due, not at a poll.
async fn assert_claimed_when_due<S: Store>(store: &S, queue: &str, what: &str) {
    let started = Instant::now();
    loop {
        store.wait_for_work(LONG_WAIT).await;
        if !claim_from(store, &[(queue, 1)], LONG_LEASE)
            .await
            .is_empty()
        {
            break;
        }
        assert!(
            started.elapsed() < LONG_WAIT / 2,
            "{what}, due in {DUE_IN:?}, was still not claimable after {:?}: the wait did \
             not end when it came due",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    assert!(
        took < LONG_WAIT / 2,
        "{what}, due in {DUE_IN:?}, was claimed after {took:?}: the wait ran to its \
         max_wait ({LONG_WAIT:?}) instead of ending when the job came due"
    );
}

/// A delayed enqueue, a retry's back-off and a snooze through the store
/// value: a waiting worker's wait ends when the job comes due (the store
/// knows when), not at `max_wait`.
pub async fn wait_for_work_returns_when_delayed_work_comes_due<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;

    let queue = fresh_queue("delayed");
    enqueue_one(s, job_in(&queue).delay(DUE_IN)).await;
    assert_claimed_when_due(s, &queue, "a delayed job").await;

    let queue = fresh_queue("retried");
    let id = enqueue_one(s, job_in(&queue)).await;
    let job = claim_one(s, &queue, id, LONG_LEASE).await;
    finish_ok(s, job.lease, failed(1, "again", Some(DUE_IN))).await;
    assert_claimed_when_due(s, &queue, "a retry").await;

    let queue = fresh_queue("snoozed");
    let id = enqueue_one(s, job_in(&queue)).await;
    let job = claim_one(s, &queue, id, LONG_LEASE).await;
    finish_ok(s, job.lease, FinishOutcome::Snoozed { delay: DUE_IN }).await;
    assert_claimed_when_due(s, &queue, "a snoozed job").await;
}
