//! Unique keys: the three scopes, duplicates within a batch, refused
//! batches, and concurrent enqueues of one key.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{
    Enqueued, FinishOutcome, JobId, JobState, Lease, NewJob, Store, UniqueScope,
};
use tokio::sync::Barrier;

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, SHORT_LEASE, cancel, claim_one, counts, enqueue, failed, finish_ok,
    fresh_queue, joined, now, prune_all_finished, record, release, rescue_until, retry, state,
    transient,
};

/// A day: windows this long only roll over at midnight UTC, which
/// [`outside_window_rollover`] steps around.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// If a `window`'s bucket is about to roll over (within a minute), waits
/// until it has: a case about one window must not straddle two.
async fn outside_window_rollover(window: Duration) {
    let window_ms = i64::try_from(window.as_millis()).expect("a window in range");
    let left_ms = window_ms - now().timestamp_millis().rem_euclid(window_ms);
    if left_ms < 60_000 {
        tokio::time::sleep(Duration::from_millis(left_ms.unsigned_abs() + 1_000)).await;
    }
}

/// Enqueues one job with a key and returns its result.
async fn enqueue_keyed<S: Store>(
    store: &S,
    queue: &str,
    key: &str,
    scope: UniqueScope,
) -> Enqueued {
    let job = NewJob::new("unique", "{}").queue(queue).unique(key, scope);
    enqueue(store, vec![job]).await[0]
}

/// Asserts a keyed enqueue is a duplicate of `holder`.
async fn assert_duplicate_of<S: Store>(
    store: &S,
    queue: &str,
    key: &str,
    scope: UniqueScope,
    holder: JobId,
    when: &str,
) {
    let again = enqueue_keyed(store, queue, key, scope).await;
    assert_eq!(
        again,
        Enqueued {
            id: holder,
            duplicate: true
        },
        "{scope:?} key `{key}` {when}: a second enqueue should be a duplicate of job {holder}"
    );
}

/// Asserts a keyed enqueue inserts a new job, and returns it.
async fn assert_inserted<S: Store>(
    store: &S,
    queue: &str,
    key: &str,
    scope: UniqueScope,
    when: &str,
) -> JobId {
    let e = enqueue_keyed(store, queue, key, scope).await;
    assert!(
        !e.duplicate,
        "{scope:?} key `{key}` {when}: the key is free, yet the enqueue was a duplicate of {}",
        e.id
    );
    e.id
}

/// `Queued` holds the key while the job waits (scheduled or available) and
/// lets go of it when the job is claimed.
pub async fn unique_queued_key_is_held_while_queued_and_released_at_claim<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("uq");
    let scope = UniqueScope::Queued;

    let first = assert_inserted(s, &q, "report", scope, "first use").await;
    assert_duplicate_of(s, &q, "report", scope, first, "while available").await;
    assert_eq!(record(s, first).await.unique_key.as_deref(), Some("report"));
    assert_eq!(
        counts(s).await.total(),
        1,
        "a duplicate must not be inserted"
    );

    claim_one(s, &q, first, LONG_LEASE).await;
    assert_eq!(
        record(s, first).await.unique_key,
        None,
        "a Queued key is let go of at claim"
    );
    let second = assert_inserted(s, &q, "report", scope, "after the holder was claimed").await;
    assert_ne!(second, first);

    let later = NewJob::new("unique", "{}")
        .queue(&q)
        .run_at(now() + TimeDelta::hours(1))
        .unique("scheduled-report", scope);
    let scheduled = enqueue(s, vec![later]).await[0].id;
    assert_duplicate_of(
        s,
        &q,
        "scheduled-report",
        scope,
        scheduled,
        "while scheduled",
    )
    .await;
}

/// Cancelling a queued job lets go of its `Queued` or `Active` key.
pub async fn unique_key_is_released_when_a_queued_job_is_cancelled<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("uc");
    for scope in [UniqueScope::Queued, UniqueScope::Active] {
        let key = format!("cancel-{}", scope.as_str());
        let first = assert_inserted(s, &q, &key, scope, "first use").await;
        cancel(s, first).await;
        assert_eq!(
            record(s, first).await.unique_key,
            None,
            "a cancelled job holds no key"
        );
        assert_inserted(s, &q, &key, scope, "after its holder was cancelled").await;
    }
}

/// `Active` holds the key while queued or running, and lets go of it when
/// the job completes.
pub async fn unique_active_key_is_held_while_running_and_released_at_completion<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("ua");
    let scope = UniqueScope::Active;

    let first = assert_inserted(s, &q, "sync", scope, "first use").await;
    assert_duplicate_of(s, &q, "sync", scope, first, "while available").await;
    let lease = claim_one(s, &q, first, LONG_LEASE).await.lease;
    assert_duplicate_of(s, &q, "sync", scope, first, "while running").await;
    assert_eq!(record(s, first).await.unique_key.as_deref(), Some("sync"));
    finish_ok(s, lease, FinishOutcome::Completed).await;
    assert_eq!(
        record(s, first).await.unique_key,
        None,
        "a completed job holds no Active key"
    );
    assert_inserted(s, &q, "sync", scope, "after its holder completed").await;
}

/// `Active` still holds the key while the job waits to retry, and lets go
/// of it when the job dies or is cancelled by its worker.
pub async fn unique_active_key_is_held_while_retryable_and_released_when_dead_or_cancelled<
    H: Harness,
>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("ud");
    let scope = UniqueScope::Active;

    let first = assert_inserted(s, &q, "k", scope, "first use").await;
    let lease = claim_one(s, &q, first, LONG_LEASE).await.lease;
    finish_ok(s, lease, failed(1, "flaky", Some(Duration::ZERO))).await;
    assert_duplicate_of(s, &q, "k", scope, first, "while retryable").await;
    let lease = claim_one(s, &q, first, LONG_LEASE).await.lease;
    finish_ok(s, lease, failed(2, "gave up", None)).await;
    let second = assert_inserted(s, &q, "k", scope, "after its holder died").await;

    let lease = claim_one(s, &q, second, LONG_LEASE).await.lease;
    cancel(s, second).await;
    assert_duplicate_of(
        s,
        &q,
        "k",
        scope,
        second,
        "while a cancel is only requested",
    )
    .await;
    let reason = "operator cancelled".to_string();
    finish_ok(s, lease, FinishOutcome::Cancelled { reason }).await;
    assert_inserted(s, &q, "k", scope, "after its holder was cancelled").await;
}

/// `Window` holds the key in every state, final ones included, until the
/// holder is pruned.
pub async fn unique_window_key_holds_in_every_state_until_the_job_is_pruned<H: Harness>(h: &H) {
    outside_window_rollover(DAY).await;
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("uw");
    let scope = UniqueScope::Window(DAY);

    let first = assert_inserted(s, &q, "daily", scope, "first use").await;
    assert_duplicate_of(s, &q, "daily", scope, first, "while available").await;
    let lease = claim_one(s, &q, first, LONG_LEASE).await.lease;
    assert_duplicate_of(s, &q, "daily", scope, first, "while running").await;
    finish_ok(s, lease, FinishOutcome::Completed).await;
    assert_duplicate_of(s, &q, "daily", scope, first, "after completion").await;
    assert_eq!(record(s, first).await.unique_key.as_deref(), Some("daily"));

    let dead_one = assert_inserted(s, &q, "other", scope, "first use").await;
    let lease = claim_one(s, &q, dead_one, LONG_LEASE).await.lease;
    finish_ok(s, lease, failed(1, "no", None)).await;
    assert_duplicate_of(s, &q, "other", scope, dead_one, "after the job died").await;
    let cancelled = assert_inserted(s, &q, "third", scope, "first use").await;
    cancel(s, cancelled).await;
    assert_duplicate_of(s, &q, "third", scope, cancelled, "after a cancel").await;

    assert_eq!(
        prune_all_finished(s).await,
        3,
        "prune the three finished holders"
    );
    assert_inserted(s, &q, "daily", scope, "after its holder was pruned").await;
}

/// `Window(d)` keys are bucketed by `floor(now / d)`: in the same window the
/// key is held, in the next one it is free again.
pub async fn unique_window_key_is_bucketed_by_the_window_length<H: Harness>(h: &H) {
    const WINDOW_MS: i64 = 2_000;
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("ub");
    let scope = UniqueScope::Window(Duration::from_millis(WINDOW_MS as u64));
    let bucket = || now().timestamp_millis().div_euclid(WINDOW_MS);
    let until_next_bucket = || {
        let left = WINDOW_MS - now().timestamp_millis().rem_euclid(WINDOW_MS);
        Duration::from_millis(left.unsigned_abs() + 100)
    };

    // A slow machine may straddle a boundary between the two enqueues; that
    // proves nothing either way, so try again in a fresh window.
    for try_ in 0..5 {
        tokio::time::sleep(until_next_bucket()).await;
        let key = format!("tick-{try_}");
        let start = bucket();
        let first = assert_inserted(s, &q, &key, scope, "first use").await;
        let again = enqueue_keyed(s, &q, &key, scope).await;
        if bucket() != start {
            continue;
        }
        assert_eq!(
            again,
            Enqueued {
                id: first,
                duplicate: true
            },
            "a second enqueue in the same {WINDOW_MS} ms window should be a duplicate"
        );
        tokio::time::sleep(until_next_bucket()).await;
        let next = assert_inserted(s, &q, &key, scope, "in the next window").await;
        assert_ne!(next, first);
        return;
    }
    panic!("five tries in a row straddled a {WINDOW_MS} ms window boundary");
}

/// Two jobs with one key in one batch: the second is a duplicate of the
/// first, in every scope.
pub async fn duplicate_key_in_one_batch_is_a_duplicate_of_the_first<H: Harness>(h: &H) {
    outside_window_rollover(DAY).await;
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = |key: &str, scope| NewJob::new("unique", "{}").unique(key, scope);
    let out = enqueue(
        s,
        vec![
            job("q", UniqueScope::Queued),
            job("q", UniqueScope::Queued),
            NewJob::new("plain", "{}"),
            job("a", UniqueScope::Active),
            job("a", UniqueScope::Active),
            job("w", UniqueScope::Window(DAY)),
            job("w", UniqueScope::Window(DAY)),
        ],
    )
    .await;
    let dups: Vec<bool> = out.iter().map(|e| e.duplicate).collect();
    assert_eq!(
        dups,
        [false, true, false, false, true, false, true],
        "in a batch, each repeated key is a duplicate of its first job: {out:?}"
    );
    for (first, second) in [(0, 1), (3, 4), (5, 6)] {
        assert_eq!(
            out[second].id, out[first].id,
            "a duplicate reports its holder's id"
        );
    }
    assert_eq!(
        counts(s).await.total(),
        4,
        "only the first of each key is inserted"
    );
}

/// A refused batch leaves no key behind: the same key enqueues afterwards.
pub async fn refused_batch_leaves_no_unique_key_behind<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("ur");
    let batch = vec![
        NewJob::new("unique", "{}")
            .queue(&q)
            .unique("kept-out", UniqueScope::Active),
        NewJob::new("broken", "{not json"),
    ];
    let refused = transient(|| s.enqueue(batch.clone())).await;
    assert!(
        refused.is_err(),
        "a batch with an invalid payload should be refused"
    );
    assert_inserted(
        s,
        &q,
        "kept-out",
        UniqueScope::Active,
        "after a refused batch",
    )
    .await;
    assert_eq!(counts(s).await.total(), 1);
}

/// Concurrent enqueues of one key, from two handles at once: exactly one
/// inserts, the others are duplicates of it.
pub async fn concurrent_enqueues_of_one_key_insert_exactly_once<H: Harness>(h: &H) {
    const RACERS: usize = 6;
    outside_window_rollover(DAY).await;
    let f = Fixture::new(h).await;
    let other = f.another_handle(h).await;
    let scopes = [
        UniqueScope::Queued,
        UniqueScope::Active,
        UniqueScope::Window(DAY),
    ];
    let mut keys = 0;
    for scope in scopes {
        for round in 0..4 {
            let key = format!("{}-{round}", scope.as_str());
            keys += 1;
            let barrier = Arc::new(Barrier::new(RACERS));
            let mut tasks = Vec::new();
            for racer in 0..RACERS {
                let store = if racer % 2 == 0 {
                    f.store.clone()
                } else {
                    other.clone()
                };
                let barrier = barrier.clone();
                let job = NewJob::new("unique", "{}").unique(key.clone(), scope);
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let out = transient(|| store.enqueue(vec![job.clone()]))
                        .await
                        .unwrap_or_else(|e| panic!("a racing enqueue failed: {e}"));
                    out[0]
                }));
            }
            let mut results = Vec::new();
            for task in tasks {
                results.push(joined(task).await);
            }
            let inserted: Vec<&Enqueued> = results.iter().filter(|e| !e.duplicate).collect();
            assert_eq!(
                inserted.len(),
                1,
                "{RACERS} concurrent enqueues of {scope:?} key `{key}` should insert exactly once: \
                 {results:?}"
            );
            let holder = inserted[0].id;
            assert!(
                results.iter().all(|e| e.id == holder),
                "every duplicate should report the one inserted job {holder}: {results:?}"
            );
        }
    }
    assert_eq!(counts(&*f.store).await.total(), keys, "one job per key");
}

/// Rescues in a row a lifecycle case allows before a rescue kills the job:
/// high enough that the one rescue it makes puts the job back in line.
const PATIENT_RESCUES: u32 = 5;

/// A key's holder, followed through its whole life, and the probes that
/// check at each step whether a new enqueue of the key is a duplicate of it.
struct Life<'a, S: Store> {
    store: &'a S,
    /// The holder's queue: claims from it take exactly the holder.
    queue: String,
    /// The probes' queue, apart so the holder's claims never see a probe.
    probes: String,
    key: String,
    scope: UniqueScope,
    holder: JobId,
}

impl<'a, S: Store> Life<'a, S> {
    /// Enqueues the holder, which must take the key.
    async fn begin(store: &'a S, scope: UniqueScope) -> Self {
        let queue = fresh_queue("life");
        let probes = fresh_queue("probe");
        let key = format!("life-{}", scope.as_str());
        let holder = assert_inserted(store, &queue, &key, scope, "first use").await;
        Life {
            store,
            queue,
            probes,
            key,
            scope,
            holder,
        }
    }

    /// Asserts the holder holds its key `when`.
    async fn held(&self, when: &str) {
        let (s, key, scope) = (self.store, &self.key, self.scope);
        assert_duplicate_of(s, &self.probes, key, scope, self.holder, when).await;
        assert_eq!(
            record(s, self.holder).await.unique_key.as_deref(),
            Some(key.as_str()),
            "{scope:?} key `{key}` {when}: the holder's record should show the key it holds"
        );
    }

    /// Asserts the key is free `when`. The probe that proved it is
    /// cancelled at once (which lets go of a queued or active key), so the
    /// key is free again for the holder's next step.
    async fn free(&self, when: &str) {
        let (s, key, scope) = (self.store, &self.key, self.scope);
        assert_eq!(
            record(s, self.holder).await.unique_key,
            None,
            "{scope:?} key `{key}` {when}: the holder's record should show no key"
        );
        let probe = assert_inserted(s, &self.probes, key, scope, when).await;
        cancel(s, probe).await;
    }

    /// Claims the holder.
    async fn claim(&self, lease: Duration) -> Lease {
        claim_one(self.store, &self.queue, self.holder, lease)
            .await
            .lease
    }

    /// Claims the holder with a short lease and lets a rescue pass find it
    /// (back in line, or dead if `max_rescues` is 1).
    async fn lose_its_worker(&self, max_rescues: u32) {
        self.claim(SHORT_LEASE).await;
        rescue_until(self.store, max_rescues, 1).await;
    }

    /// An operator's retry of the finished holder, which must be applied.
    async fn operator_retry(&self) {
        assert!(
            retry(self.store, self.holder).await,
            "an operator's retry of finished job {} should be applied",
            self.holder
        );
    }
}

/// `Queued` holds the key until the job's first attempt starts (as
/// sidekiq-unique-jobs' `until_executing`): let go of at the first claim,
/// and not taken back when the job is put back in line by a retry, a
/// snooze, a release or a rescue. An operator's retry of the finished job
/// queues it afresh, so it takes the key back if no other job holds it.
pub async fn unique_queued_key_through_a_jobs_whole_life<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let life = Life::begin(&*f.store, UniqueScope::Queued).await;
    let s = life.store;
    life.held("while available").await;

    let lease = life.claim(LONG_LEASE).await;
    life.free("while its first attempt runs").await;
    finish_ok(s, lease, failed(1, "flaky", Some(Duration::ZERO))).await;
    life.free("while retryable").await;
    let lease = life.claim(LONG_LEASE).await;
    life.free("while its second attempt runs").await;
    let delay = Duration::ZERO;
    finish_ok(s, lease, FinishOutcome::Snoozed { delay }).await;
    life.free("after a snooze").await;
    let lease = life.claim(LONG_LEASE).await;
    assert_eq!(release(s, vec![lease]).await, 1);
    life.free("after a release").await;
    life.lose_its_worker(PATIENT_RESCUES).await;
    life.free("after a rescue").await;
    let lease = life.claim(LONG_LEASE).await;
    finish_ok(s, lease, FinishOutcome::Completed).await;
    life.free("after completion").await;

    life.operator_retry().await;
    life.held("after an operator's retry of the completed job")
        .await;
    let lease = life.claim(LONG_LEASE).await;
    life.free("once the retried job runs").await;
    finish_ok(s, lease, failed(1, "gave up", None)).await;
    life.free("after the job died").await;

    operator_retry_while_another_job_holds_the_key(&life).await;
}

/// `Active` holds the key until the job reaches a final state: through
/// its attempts, retries, snoozes, releases and rescues, let go of when it
/// completes, dies (of failures or of lost workers) or is cancelled. An
/// operator's retry of the finished job takes the key back if no other job
/// holds it.
pub async fn unique_active_key_through_a_jobs_whole_life<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let life = Life::begin(&*f.store, UniqueScope::Active).await;
    let s = life.store;
    life.held("while available").await;

    let lease = life.claim(LONG_LEASE).await;
    life.held("while running").await;
    finish_ok(s, lease, failed(1, "flaky", Some(Duration::ZERO))).await;
    life.held("while retryable").await;
    let lease = life.claim(LONG_LEASE).await;
    let delay = Duration::ZERO;
    finish_ok(s, lease, FinishOutcome::Snoozed { delay }).await;
    life.held("after a snooze").await;
    let lease = life.claim(LONG_LEASE).await;
    assert_eq!(release(s, vec![lease]).await, 1);
    life.held("after a release").await;
    life.lose_its_worker(PATIENT_RESCUES).await;
    life.held("after a rescue").await;
    let lease = life.claim(LONG_LEASE).await;
    finish_ok(s, lease, FinishOutcome::Completed).await;
    life.free("after completion").await;

    life.operator_retry().await;
    life.held("after an operator's retry of the completed job")
        .await;
    let lease = life.claim(LONG_LEASE).await;
    life.held("while the retried job runs").await;
    finish_ok(s, lease, failed(1, "gave up", None)).await;
    life.free("after the job died of a failure").await;

    life.operator_retry().await;
    life.held("after an operator's retry of the dead job").await;
    life.lose_its_worker(1).await;
    assert_eq!(state(s, life.holder).await, JobState::Dead);
    life.free("after the job died of a lost worker").await;

    life.operator_retry().await;
    life.held("after another operator's retry").await;
    let lease = life.claim(LONG_LEASE).await;
    let reason = "not needed".to_string();
    finish_ok(s, lease, FinishOutcome::Cancelled { reason }).await;
    life.free("after its worker cancelled it").await;

    operator_retry_while_another_job_holds_the_key(&life).await;
}

/// `Window` holds the key whatever the job does, final states and an
/// operator's retry included, until the job is pruned.
pub async fn unique_window_key_through_a_jobs_whole_life<H: Harness>(h: &H) {
    outside_window_rollover(DAY).await;
    let f = Fixture::new(h).await;
    let life = Life::begin(&*f.store, UniqueScope::Window(DAY)).await;
    let s = life.store;
    life.held("while available").await;

    let lease = life.claim(LONG_LEASE).await;
    life.held("while running").await;
    finish_ok(s, lease, failed(1, "flaky", Some(Duration::ZERO))).await;
    life.held("while retryable").await;
    let lease = life.claim(LONG_LEASE).await;
    let delay = Duration::ZERO;
    finish_ok(s, lease, FinishOutcome::Snoozed { delay }).await;
    life.held("after a snooze").await;
    let lease = life.claim(LONG_LEASE).await;
    assert_eq!(release(s, vec![lease]).await, 1);
    life.held("after a release").await;
    life.lose_its_worker(PATIENT_RESCUES).await;
    life.held("after a rescue").await;
    let lease = life.claim(LONG_LEASE).await;
    finish_ok(s, lease, FinishOutcome::Completed).await;
    life.held("after completion").await;

    life.operator_retry().await;
    life.held("after an operator's retry").await;
    let lease = life.claim(LONG_LEASE).await;
    finish_ok(s, lease, failed(1, "gave up", None)).await;
    life.held("after the job died").await;
    life.operator_retry().await;
    life.lose_its_worker(1).await;
    assert_eq!(state(s, life.holder).await, JobState::Dead);
    life.held("after the job died of a lost worker").await;

    assert_eq!(prune_all_finished(s).await, 1, "prune the dead holder");
    let e = enqueue_keyed(s, &life.probes, &life.key, life.scope).await;
    assert!(
        !e.duplicate,
        "a Window key should be free once its holder was pruned, yet it is held by {}",
        e.id
    );
}

/// The finished holder's key is taken by another job; an operator's retry
/// of the holder is still applied (a key is never a reason to refuse it),
/// without the key: the other job keeps it.
async fn operator_retry_while_another_job_holds_the_key<S: Store>(life: &Life<'_, S>) {
    let (s, key, scope) = (life.store, &life.key, life.scope);
    assert!(state(s, life.holder).await.is_final());
    let other = assert_inserted(s, &life.probes, key, scope, "after the holder finished").await;
    life.operator_retry().await;
    assert_eq!(state(s, life.holder).await, JobState::Available);
    assert_eq!(
        record(s, life.holder).await.unique_key,
        None,
        "{scope:?} key `{key}`: a job retried while another holds its key runs without it"
    );
    assert_duplicate_of(
        s,
        &life.probes,
        key,
        scope,
        other,
        "after an operator's retry of its old holder",
    )
    .await;
    assert_eq!(
        record(s, other).await.unique_key.as_deref(),
        Some(key.as_str())
    );
}
