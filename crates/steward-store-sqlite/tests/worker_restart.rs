//! A panic in the worker's own loop (here injected into the store's claim,
//! as a bug in store code would be): the worker gives back everything it
//! holds at once (running jobs released as interrupted), the host restarts
//! it, and the restarted worker is the one that was configured, with all its
//! job kinds (issue 11, defects 0 and 1). It
//! used to come back without kinds, failing every job it claimed as
//! `unknown job kind`, while the jobs it held waited out their leases.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::faulty::Faulty;
use serde::{Deserialize, Serialize};
use steward_core::BoxError;
use steward_core::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};

/// Longer than the test may take: only a release can bring a held job back.
const LEASE: Duration = Duration::from_secs(120);
const PATIENCE: Duration = Duration::from_secs(20);

/// Open once the worker has been restarted.
type Gate = Arc<AtomicBool>;

/// Runs until the gate opens, or until told to stop.
#[derive(Serialize, Deserialize)]
struct Hold {}

impl Job for Hold {
    const KIND: &'static str = "hold";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let gate = ctx.state::<Gate>().expect("the test gives a gate").clone();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_loop_panics_gives_back_its_jobs_and_restarts_with_its_kinds() {
    let t = common::open().await;
    let real = Arc::new(t.store);
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
        .and_then(|w| w.register::<Quick>())
        .and_then(|w| {
            w.config(WorkerConfig {
                queues: vec![QueueConfig {
                    name: "default".into(),
                    concurrency: 2,
                }],
                prefetch: 0,
                lease: LEASE,
                heartbeat_every: Duration::from_secs(10),
                poll_interval: Duration::from_millis(100),
                ..WorkerConfig::default()
            })
        })
        .expect("a worker")
        .state(gate.clone());
    let host = common::host("worker", worker);
    let handle = host.handle.clone();

    let started = Instant::now();
    common::until("the hold job running", || async {
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
    common::until("the worker restarted", || async {
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

    let status = host.stop().await;
    assert!(status.is_success(), "{status:?}");
}
