//! What the cases share: a fixture per case, short-hands for the store calls
//! every case makes, and the time tolerances.
//!
//! Every helper panics on an unexpected answer, naming what it expected: the
//! panic is the case's failure message.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use steward_core::store::{
    AttemptError, ClaimRequest, ClaimedJob, Enqueued, ErrorKind, Finish, FinishOutcome, JobId,
    JobRecord, JobState, Lease, LeaseToken, NewJob, QueueClaim, RescueReport, StateCounts, Store,
    StoreError,
};

use crate::Harness;

/// A lease no case outlives, so a job claimed with it is never rescued by
/// accident on a slow machine.
pub(crate) const LONG_LEASE: Duration = Duration::from_secs(600);

/// A lease meant to expire: the cases then wait (generously) for a rescue.
pub(crate) const SHORT_LEASE: Duration = Duration::from_millis(100);

/// How long to wait for something that should happen soon (a lease to
/// expire, a wake-up). Generous: a loaded two-core CI machine is slow, and
/// the contract is about what happens, not how fast.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A delay no case waits out.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// The worker name the cases claim as.
pub(crate) const WORKER: &str = "contract-worker/1";

/// How far apart the store's clock and the test's may be when a case checks
/// that the store wrote "now". Both are this machine's clock (the database's
/// `now()` on loopback), so this only absorbs scheduling delays.
pub(crate) fn slack() -> TimeDelta {
    TimeDelta::seconds(2)
}

/// One case's database and its first handle. Fields drop in order: the
/// handle before the database (a temp file must outlive its connections).
pub(crate) struct Fixture<H: Harness> {
    /// The first handle, shared with spawned tasks.
    pub(crate) store: Arc<H::Store>,
    database: H::Database,
}

impl<H: Harness> Fixture<H> {
    /// A fresh database and a migrated handle on it.
    pub(crate) async fn new(harness: &H) -> Self {
        let database = harness.database().await;
        let store = harness.connect(&database).await;
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate on a fresh database failed: {e}"));
        Fixture {
            store: Arc::new(store),
            database,
        }
    }

    /// Another, independent migrated handle on the same database.
    pub(crate) async fn another_handle(&self, harness: &H) -> Arc<H::Store> {
        let store = harness.connect(&self.database).await;
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate on a second handle failed: {e}"));
        Arc::new(store)
    }
}

/// The test's clock.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `t` truncated to whole milliseconds: the precision every store keeps, so
/// a time the case writes round-trips exactly.
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("a time in range")
}

/// A queue name no other job of the case uses, so a claim from it takes
/// exactly the job the case put there.
pub(crate) fn fresh_queue(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Asserts `t` is between `lo` and `hi`, give or take [`slack`].
pub(crate) fn assert_between(t: DateTime<Utc>, lo: DateTime<Utc>, hi: DateTime<Utc>, what: &str) {
    assert!(
        t >= lo - slack() && t <= hi + slack(),
        "{what} should be the store's now (between {lo} and {hi}), but is {t}"
    );
}

/// Asserts two times are equal at millisecond precision.
pub(crate) fn assert_same_ms(actual: DateTime<Utc>, expected: DateTime<Utc>, what: &str) {
    let diff = (actual - expected).abs();
    assert!(
        diff <= TimeDelta::milliseconds(1),
        "{what} should be {expected} (to the millisecond), but is {actual}"
    );
}

/// Asserts two JSON texts hold the same value (a store may normalize the
/// text, e.g. PostgreSQL's jsonb reorders keys and spacing).
pub(crate) fn assert_same_json(actual: &str, expected: &str, what: &str) {
    let a: serde_json::Value = serde_json::from_str(actual)
        .unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {actual:?}"));
    let b: serde_json::Value = serde_json::from_str(expected).expect("the case's JSON is valid");
    assert_eq!(a, b, "{what} should hold the JSON value given");
}

/// Runs `op` again while it fails with a transient error (busy, unavailable),
/// as the engine does: a store may answer `Busy` under contention, it may not
/// answer wrongly. Gives up after [`PATIENCE`].
pub(crate) async fn transient<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match op().await {
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => return other,
        }
    }
}

/// Awaits a spawned task, re-raising its panic (with its message) here.
pub(crate) async fn joined<T>(handle: tokio::task::JoinHandle<T>) -> T {
    match handle.await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a case's task was cancelled: {e}"),
    }
}

/// The job's record; panics if the store does not know it.
pub(crate) async fn record<S: Store>(store: &S, id: JobId) -> JobRecord {
    transient(|| store.job(id))
        .await
        .unwrap_or_else(|e| panic!("job({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("job({id}) should exist, but the store returned None"))
}

/// The job's state.
pub(crate) async fn state<S: Store>(store: &S, id: JobId) -> JobState {
    record(store, id).await.state
}

/// Enqueues a batch that must succeed.
pub(crate) async fn enqueue<S: Store>(store: &S, jobs: Vec<NewJob>) -> Vec<Enqueued> {
    let n = jobs.len();
    let out = transient(|| store.enqueue(jobs.clone()))
        .await
        .unwrap_or_else(|e| panic!("enqueue of {n} valid jobs failed: {e}"));
    assert_eq!(out.len(), n, "enqueue should answer once per job");
    out
}

/// Enqueues one job that must be inserted (not a duplicate).
pub(crate) async fn enqueue_one<S: Store>(store: &S, job: NewJob) -> JobId {
    let out = enqueue(store, vec![job]).await;
    assert!(
        !out[0].duplicate,
        "a job without a held key was reported as a duplicate"
    );
    out[0].id
}

/// A plain job in `queue`.
pub(crate) fn job_in(queue: &str) -> NewJob {
    NewJob::new("contract", r#"{"n":1}"#).queue(queue)
}

/// Claims from the given queues (in order, with limits).
pub(crate) async fn claim_from<S: Store>(
    store: &S,
    queues: &[(&str, u32)],
    lease: Duration,
) -> Vec<ClaimedJob> {
    let request = ClaimRequest {
        worker: WORKER.to_string(),
        queues: queues
            .iter()
            .map(|(queue, limit)| QueueClaim {
                queue: (*queue).to_string(),
                limit: *limit,
            })
            .collect(),
        lease,
        max_suspects: u32::MAX,
        kinds: None,
    };
    transient(|| store.claim(request.clone()))
        .await
        .unwrap_or_else(|e| panic!("claim from {queues:?} failed: {e}"))
}

/// Claims exactly one job from `queue`, which must be `expected`.
pub(crate) async fn claim_one<S: Store>(
    store: &S,
    queue: &str,
    expected: JobId,
    lease: Duration,
) -> ClaimedJob {
    let mut claimed = claim_from(store, &[(queue, 10)], lease).await;
    let ids: Vec<JobId> = claimed.iter().map(|c| c.lease.id).collect();
    assert_eq!(
        ids,
        vec![expected],
        "claiming queue `{queue}` should return exactly job {expected}"
    );
    claimed.remove(0)
}

/// Enqueues a job in a queue of its own and claims it.
pub(crate) async fn running<S: Store>(store: &S, lease: Duration) -> ClaimedJob {
    let queue = fresh_queue("running");
    let id = enqueue_one(store, job_in(&queue)).await;
    claim_one(store, &queue, id, lease).await
}

/// Finishes one attempt; returns whether the store applied it.
pub(crate) async fn finish<S: Store>(store: &S, lease: Lease, outcome: FinishOutcome) -> bool {
    let batch = vec![Finish { lease, outcome }];
    let applied = transient(|| store.finish(batch.clone()))
        .await
        .unwrap_or_else(|e| panic!("finish of job {} failed: {e}", lease.id));
    assert_eq!(applied.len(), 1, "finish should answer once per item");
    applied[0]
}

/// Finishes one attempt that must be applied.
pub(crate) async fn finish_ok<S: Store>(store: &S, lease: Lease, outcome: FinishOutcome) {
    let what = format!("{outcome:?}");
    assert!(
        finish(store, lease, outcome).await,
        "finish {what} of job {} with its current lease was refused",
        lease.id
    );
}

/// An attempt error as the engine would record it.
pub(crate) fn attempt_error(attempt: u32, kind: ErrorKind, message: &str) -> AttemptError {
    AttemptError {
        attempt,
        at: ms(now()),
        kind,
        message: message.to_string(),
    }
}

/// A failed outcome for `attempt`, retried `retry_in` after the store's
/// now (dead if `None`).
pub(crate) fn failed(attempt: u32, message: &str, retry_in: Option<Duration>) -> FinishOutcome {
    FinishOutcome::Failed {
        error: attempt_error(attempt, ErrorKind::Error, message),
        retry_in,
    }
}

/// The same job with a token that is not the attempt's.
pub(crate) fn stale(lease: Lease) -> Lease {
    Lease {
        id: lease.id,
        token: LeaseToken(lease.token.0.wrapping_add(1)),
    }
}

/// Heartbeats one lease.
pub(crate) async fn heartbeat_one<S: Store>(
    store: &S,
    lease: Lease,
    length: Duration,
) -> steward_core::store::HeartbeatResult {
    let answers = transient(|| store.heartbeat(vec![lease], length))
        .await
        .unwrap_or_else(|e| panic!("heartbeat of job {} failed: {e}", lease.id));
    assert_eq!(answers.len(), 1, "heartbeat should answer once per lease");
    answers[0]
}

/// Releases leases; returns how many the store released.
pub(crate) async fn release<S: Store>(store: &S, leases: Vec<Lease>) -> u64 {
    transient(|| store.release(leases.clone()))
        .await
        .unwrap_or_else(|e| panic!("release failed: {e}"))
}

/// Cancels a job.
pub(crate) async fn cancel<S: Store>(store: &S, id: JobId) -> steward_core::store::CancelResult {
    transient(|| store.cancel(id))
        .await
        .unwrap_or_else(|e| panic!("cancel({id}) failed: {e}"))
}

/// Retries a job (operator).
pub(crate) async fn retry<S: Store>(store: &S, id: JobId) -> bool {
    transient(|| store.retry(id))
        .await
        .unwrap_or_else(|e| panic!("retry({id}) failed: {e}"))
}

/// One rescue pass.
pub(crate) async fn rescue_once<S: Store>(store: &S, max_rescues: u32) -> RescueReport {
    transient(|| store.rescue_expired(max_rescues))
        .await
        .unwrap_or_else(|e| panic!("rescue_expired({max_rescues}) failed: {e}"))
}

/// Runs rescue passes until `want` jobs were rescued, made dead or cancelled in total
/// (their short leases have to expire first), and returns the sum of the
/// reports. Panics after [`PATIENCE`].
pub(crate) async fn rescue_until<S: Store>(store: &S, max_rescues: u32, want: u64) -> RescueReport {
    let deadline = Instant::now() + PATIENCE;
    let mut total = RescueReport::default();
    loop {
        let report = rescue_once(store, max_rescues).await;
        total.rescued += report.rescued;
        total.dead += report.dead;
        total.cancelled += report.cancelled;
        if total.rescued + total.dead + total.cancelled >= want {
            return total;
        }
        assert!(
            Instant::now() < deadline,
            "rescue_expired should have found {want} expired lease(s) within {PATIENCE:?} \
             (leases of {SHORT_LEASE:?}), found {total:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The counts per state.
pub(crate) async fn counts<S: Store>(store: &S) -> StateCounts {
    transient(|| store.counts())
        .await
        .unwrap_or_else(|e| panic!("counts failed: {e}"))
}

/// Prunes by age; returns how many were deleted.
pub(crate) async fn prune<S: Store>(
    store: &S,
    completed_older_than: Duration,
    dead_older_than: Duration,
) -> u64 {
    transient(|| store.prune(completed_older_than, dead_older_than))
        .await
        .unwrap_or_else(|e| panic!("prune failed: {e}"))
}

/// Prunes every finished job (ages of zero), once the store's clock has
/// moved past the jobs the case just finished: the cutoff is strict, and a
/// job finished within the same millisecond is not yet "older than zero".
pub(crate) async fn prune_all_finished<S: Store>(store: &S) -> u64 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    prune(store, Duration::ZERO, Duration::ZERO).await
}

/// Puts a new job in `state` (each in a queue of its own) and returns it.
/// Running jobs hold a [`LONG_LEASE`].
pub(crate) async fn job_in_state<S: Store>(store: &S, state: JobState) -> JobId {
    let queue = fresh_queue(state.as_str());
    let id = match state {
        JobState::Scheduled => enqueue_one(store, job_in(&queue).delay(HOUR)).await,
        JobState::Available => enqueue_one(store, job_in(&queue)).await,
        JobState::Cancelled => {
            let id = enqueue_one(store, job_in(&queue)).await;
            cancel(store, id).await;
            id
        }
        JobState::Running | JobState::Retryable | JobState::Completed | JobState::Dead => {
            let id = enqueue_one(store, job_in(&queue)).await;
            let lease = claim_one(store, &queue, id, LONG_LEASE).await.lease;
            let outcome = match state {
                JobState::Retryable => Some(failed(1, "boom", Some(HOUR))),
                JobState::Completed => Some(FinishOutcome::Completed),
                JobState::Dead => Some(failed(1, "boom", None)),
                _ => None,
            };
            if let Some(outcome) = outcome {
                finish_ok(store, lease, outcome).await;
            }
            id
        }
    };
    assert_eq!(
        self::state(store, id).await,
        state,
        "setting up a job in state {state}"
    );
    id
}

/// Saves a checkpoint; the store's answer as is (`LeaseLost` is expected in
/// some cases).
pub(crate) async fn checkpoint<S: Store>(
    store: &S,
    lease: Lease,
    state: &str,
) -> Result<(), StoreError> {
    transient(|| store.checkpoint(lease, state.to_string())).await
}
