//! Outcomes the store will not take (issue 11, defect 6). One outcome the
//! database refuses for good must not hold back the others: the worker's
//! outcome writer isolates it and goes on. Outcomes that cannot be written
//! for a while make the worker not ready, until they can.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::jobs::{Job, JobContext, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};
use steward_core::{BoxError, HostHandle};

use super::faulty::Faulty;
use super::kit::{Bench, host, one_queue};
use crate::Harness;

const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "noop";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

fn worker<S: Store>(store: Arc<S>) -> Worker<S> {
    Worker::new(store).register::<Noop>().config(WorkerConfig {
        poll_interval: Duration::from_millis(100),
        ..one_queue(4)
    })
}

/// The database refuses the completion of one job, as a data error from
/// the server would (the harness's [`Harness::refuse_completion`], a
/// trigger): the other thirty jobs' outcomes are written all the same, and
/// the worker keeps running. The writer used to retry the batch holding the
/// refused outcome forever, and every outcome behind it waited.
pub async fn an_outcome_the_database_refuses_for_good_holds_back_no_other<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let store = b.store.clone();
    let poison = store
        .enqueue(vec![NewJob::new("noop", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    h.refuse_completion(b.database(), poison).await;
    let others: Vec<_> = store
        .enqueue((0..30).map(|_| NewJob::new("noop", "{}")).collect())
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();

    let running = host(|builder| {
        builder
            .service("worker", worker(store.clone()))
            .expect("register");
    });
    let handle = running.handle.clone();
    let started = Instant::now();
    loop {
        let counts = store.counts().await.expect("counts");
        if counts.completed == 30 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "every other outcome should be written: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in others {
        assert_eq!(
            store.job(id).await.expect("read").expect("exists").state,
            JobState::Completed
        );
    }
    let refused = store.job(poison).await.expect("read").expect("exists");
    assert_ne!(
        refused.state,
        JobState::Completed,
        "the database was to refuse this completion: {refused:?}"
    );
    let service = &handle.status().services[0];
    assert!(
        service.state.is_running() && service.restarts == 0,
        "{service:?}"
    );
    let status = running.stop().await;
    assert!(status.is_success(), "{status:?}");
}

/// While outcomes cannot be written the worker says it is not ready (a
/// load balancer or an orchestrator should know), and ready again once
/// they are written. It used to stay ready throughout.
pub async fn the_worker_is_not_ready_while_outcomes_cannot_be_written<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let real = b.store.clone();
    let store = Arc::new(Faulty::new(real.clone()));
    let running = host(|builder| {
        builder
            .service("worker", worker(store.clone()))
            .expect("register");
    });
    let handle = running.handle.clone();
    let ready = |handle: &HostHandle| handle.status().services[0].ready;
    let started = Instant::now();
    while !ready(&handle) {
        assert!(started.elapsed() < PATIENCE, "never ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    store.refuse_outcomes(true);
    let id = real
        .enqueue(vec![NewJob::new("noop", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    while ready(&handle) {
        assert!(
            started.elapsed() < PATIENCE,
            "the worker stayed ready while its outcome could not be written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        real.job(id).await.expect("read").expect("exists").state,
        JobState::Running
    );

    store.refuse_outcomes(false);
    while !ready(&handle) {
        assert!(
            started.elapsed() < PATIENCE,
            "not ready again after outcomes could be written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while real.job(id).await.expect("read").expect("exists").state != JobState::Completed {
        assert!(
            started.elapsed() < PATIENCE,
            "the outcome was never written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = running.stop().await;
    assert!(status.is_success(), "{status:?}");
}
