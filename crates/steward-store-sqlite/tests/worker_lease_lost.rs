//! A worker out of contact with its store for longer than the lease: the
//! job is rescued meanwhile and, once contact is back, claimed again by the
//! same worker while the stale attempt still runs. The worker must keep
//! the two attempts apart (issue 11, defect 2): the stale one is told its
//! lease is lost, the new one keeps its heartbeats and completes. Keyed by
//! job id alone, the new claim overwrote the stale entry and the stale
//! attempt's end removed the new one, whose lease then expired.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::faulty::Faulty;
use serde::{Deserialize, Serialize};
use steward_core::BoxError;
use steward_core::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};

const LEASE: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Seen {
    runs: AtomicU32,
    /// Set when the first run saw its stop signal.
    first_stopped: AtomicBool,
    /// Lets a first run that was never stopped end at last.
    gate: AtomicBool,
}

/// The first run waits (it is the stale attempt); the second outlives
/// several leases, kept only by heartbeats.
#[derive(Serialize, Deserialize)]
struct Twice {}

impl Job for Twice {
    const KIND: &'static str = "twice";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let seen = ctx.state::<Arc<Seen>>().expect("the test's record").clone();
        if seen.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            while !seen.gate.load(Ordering::SeqCst) {
                if ctx.token().is_cancelled() {
                    seen.first_stopped.store(true, Ordering::SeqCst);
                    return Err("stopped".into());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return Ok(());
        }
        tokio::time::sleep(LEASE * 3).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reclaimed_by_the_same_worker_keeps_its_new_attempt_apart_from_the_stale_one() {
    let t = common::open().await;
    let real = Arc::new(t.store);
    let store = Arc::new(Faulty::new(real.clone()));
    let id = real
        .enqueue(vec![NewJob::new("twice", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let seen = Arc::new(Seen::default());
    let worker = Worker::new(store.clone())
        .register::<Twice>()
        .and_then(|w| {
            w.config(WorkerConfig {
                queues: vec![QueueConfig {
                    name: "default".into(),
                    concurrency: 2,
                }],
                prefetch: 0,
                lease: LEASE,
                heartbeat_every: Duration::from_millis(100),
                poll_interval: Duration::from_millis(50),
                ..WorkerConfig::default()
            })
        })
        .expect("a worker")
        .state(seen.clone());
    let host = common::host("worker", worker);

    let started = Instant::now();
    common::until("the job started", || async {
        seen.runs.load(Ordering::SeqCst) > 0
    })
    .await;
    // Out of contact for longer than the lease; meanwhile the job is
    // rescued (as another node's maintenance would).
    store.cut(true);
    tokio::time::sleep(LEASE + LEASE / 2).await;
    let report = real.rescue_expired(10).await.expect("rescue");
    assert_eq!(report.rescued, 1, "{report:?}");
    store.cut(false);

    // Maintenance keeps rescuing expired leases from now on.
    let rescuer = {
        let real = real.clone();
        tokio::spawn(async move {
            loop {
                let _ = real.rescue_expired(10).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    common::until("the job claimed again", || async {
        seen.runs.load(Ordering::SeqCst) >= 2
    })
    .await;
    // A stale attempt that was never told ends now, beside the new one.
    tokio::time::sleep(LEASE / 2).await;
    let stopped = seen.first_stopped.load(Ordering::SeqCst);
    seen.gate.store(true, Ordering::SeqCst);

    let job = loop {
        let job = real.job(id).await.expect("read").expect("exists");
        if job.state.is_final() {
            break job;
        }
        assert!(started.elapsed() < PATIENCE, "the job never ended: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    rescuer.abort();
    assert!(
        stopped,
        "the stale attempt should be told its lease was lost once contact is back"
    );
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    // A rescue gives the attempt back and records the loss; the new
    // attempt then held its lease to the end: one loss, one counted attempt.
    let lost = job
        .errors
        .iter()
        .filter(|e| e.kind == steward_core::store::ErrorKind::WorkerLost)
        .count();
    assert_eq!(
        (job.attempt, lost, job.errors.len()),
        (1, 1, 1),
        "one rescue (the real one), then the new attempt held its lease to the end: {job:?}"
    );
    assert_eq!(seen.runs.load(Ordering::SeqCst), 2, "no third run");

    let status = host.stop().await;
    assert!(status.is_success(), "{status:?}");
}
