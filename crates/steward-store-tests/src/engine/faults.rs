//! The worker when its store misbehaves (issue 11, defects 0, 1 and 2):
//! a panic in its own loop, and a loss of contact longer than the lease.
//! The faults are injected by [`Faulty`] over the real store, so each case
//! runs the same on every store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::BoxError;
use steward_core::jobs::{Job, JobContext, Worker, WorkerConfig};
use steward_core::store::{ErrorKind, JobState, NewJob, Store};

use super::faulty::Faulty;
use super::kit::{Bench, host, one_queue, until};
use crate::Harness;

const PATIENCE: Duration = Duration::from_secs(20);

/// Open once the worker has been restarted.
type Gate = Arc<AtomicBool>;

/// Runs until the gate opens, or until told to stop.
#[derive(Serialize, Deserialize)]
struct Hold {}

impl Job for Hold {
    const KIND: &'static str = "hold";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let gate = ctx.state::<Gate>().expect("the case gives a gate").clone();
        while !gate.load(Ordering::SeqCst) {
            tokio::select! {
                _ = ctx.token().cancelled() => return Err("stopped".into()),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Quick {}

impl Job for Quick {
    const KIND: &'static str = "quick";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A panic in the worker's own loop (here injected into the store's claim,
/// as a bug in store code would be): the worker gives back everything it
/// holds at once (running jobs released as interrupted), the host restarts
/// it, and the restarted worker is the one that was configured, with all
/// its job kinds. It used to come back without kinds, failing every job it
/// claimed as `unknown job kind`, while the jobs it held waited out their
/// leases.
pub async fn a_worker_whose_loop_panics_gives_back_its_jobs_and_restarts_with_its_kinds<
    H: Harness,
>(
    h: &H,
) {
    // Longer than the case may take: only a release can bring a held job back.
    const LEASE: Duration = Duration::from_secs(120);
    let b = Bench::new(h).await;
    let real = b.store.clone();
    let store = Arc::new(Faulty::new(real.clone()));
    let hold = real
        .enqueue(vec![NewJob::new("hold", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let others: Vec<_> = real
        .enqueue(
            (0..2)
                .map(|_| NewJob::new("quick", "{}").priority(1))
                .collect(),
        )
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();

    let gate: Gate = Arc::default();
    let worker = Worker::new(store.clone())
        .register::<Hold>()
        .register::<Quick>()
        .config(WorkerConfig {
            prefetch: 0,
            lease: LEASE,
            heartbeat_every: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            ..one_queue(2)
        })
        .state(gate.clone());
    let running = host(|builder| {
        builder.service("worker", worker).expect("register");
    });
    let handle = running.handle.clone();

    let started = Instant::now();
    until("the hold job running", || async {
        real.job(hold).await.expect("read").map(|j| j.state) == Some(JobState::Running)
    })
    .await;

    // The next claim panics: the enqueue wakes the worker to make it.
    store.panic_next_claims(1);
    let woken = real
        .enqueue(vec![NewJob::new("quick", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    until("the worker restarted", || async {
        handle.status().services[0].restarts > 0
    })
    .await;
    gate.store(true, Ordering::SeqCst);

    let all: Vec<_> = [hold, woken].into_iter().chain(others).collect();
    loop {
        let mut done = true;
        for id in &all {
            let job = real.job(*id).await.expect("read").expect("exists");
            assert!(
                job.errors.is_empty(),
                "job {id} ({}) should have no failed attempt: {:?}",
                job.kind,
                job.errors
            );
            done &= job.state == JobState::Completed;
        }
        if done {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "every job should complete without waiting for its lease: {:?}",
            real.counts().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = real.job(hold).await.expect("read").expect("exists");
    assert_eq!(
        (job.attempt, job.interrupted),
        (1, 1),
        "the hold job was interrupted by the panic (not counted as an attempt) and ran again"
    );
    let service = &handle.status().services[0];
    assert_eq!(service.restarts, 1, "{service:?}");
    assert!(
        service
            .last_error
            .as_ref()
            .is_some_and(|e| e.message.contains("injected")),
        "the panic is recorded: {service:?}"
    );

    let status = running.stop().await;
    assert!(status.is_success(), "{status:?}");
}

/// The lease of [`Twice`]'s worker.
const TWICE_LEASE: Duration = Duration::from_secs(1);

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
        let seen = ctx.state::<Arc<Seen>>().expect("the case's record").clone();
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
        tokio::time::sleep(TWICE_LEASE * 3).await;
        Ok(())
    }
}

/// A worker out of contact with its store for longer than the lease: the
/// job is rescued meanwhile and, once contact is back, claimed again by the
/// same worker while the stale attempt still runs. The worker must keep
/// the two attempts apart: the stale one is told its lease is lost, the new
/// one keeps its heartbeats and completes. Keyed by job id alone, the new
/// claim overwrote the stale entry and the stale attempt's end removed the
/// new one, whose lease then expired.
pub async fn a_job_reclaimed_by_the_same_worker_keeps_its_new_attempt_apart_from_the_stale_one<
    H: Harness,
>(
    h: &H,
) {
    const LEASE: Duration = TWICE_LEASE;
    let b = Bench::new(h).await;
    let real = b.store.clone();
    let store = Arc::new(Faulty::new(real.clone()));
    let id = real
        .enqueue(vec![NewJob::new("twice", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let seen = Arc::new(Seen::default());
    let worker = Worker::new(store.clone())
        .register::<Twice>()
        .config(WorkerConfig {
            prefetch: 0,
            lease: LEASE,
            heartbeat_every: Duration::from_millis(100),
            poll_interval: Duration::from_millis(50),
            ..one_queue(2)
        })
        .state(seen.clone());
    let running = host(|builder| {
        builder.service("worker", worker).expect("register");
    });

    let started = Instant::now();
    until("the job started", || async {
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
    until("the job claimed again", || async {
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
        .filter(|e| e.kind == ErrorKind::WorkerLost)
        .count();
    assert_eq!(
        (job.attempt, lost, job.errors.len()),
        (1, 1, 1),
        "one rescue (the real one), then the new attempt held its lease to the end: {job:?}"
    );
    assert_eq!(seen.runs.load(Ordering::SeqCst), 2, "no third run");

    let status = running.stop().await;
    assert!(status.is_success(), "{status:?}");
}
