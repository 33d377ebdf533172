//! Outcomes the store will not take (issue 11, defect 6). One outcome the
//! database refuses for good must not hold back the others: the writer
//! isolates it and goes on. Outcomes that cannot be written for a while
//! make the worker not ready, until they can.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faulty::Faulty;
use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, Executor as _, SqliteConnection};
use steward_core::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};
use steward_core::{BoxError, HostHandle};

const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "noop";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

fn config() -> WorkerConfig {
    WorkerConfig {
        queues: vec![QueueConfig {
            name: "default".into(),
            concurrency: 4,
        }],
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    }
}

fn worker<S: Store>(store: Arc<S>) -> Worker<S> {
    Worker::new(store)
        .register::<Noop>()
        .and_then(|w| w.config(config()))
        .expect("a worker")
}

/// A trigger refuses the completion of one job, as a data error from the
/// server would: the other thirty jobs' outcomes are written all the same,
/// and the worker keeps running. The writer used to retry the batch holding
/// the refused outcome forever, and every outcome behind it waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_the_database_refuses_for_good_holds_back_no_other() {
    let t = common::open().await;
    let store = Arc::new(t.store);
    let poison = store
        .enqueue(vec![NewJob::new("noop", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let mut raw = SqliteConnection::connect(&format!(
        "sqlite://{}",
        t.dir.path().join("jobs.db").display()
    ))
    .await
    .expect("a raw connection");
    raw.execute(
        format!(
            "CREATE TRIGGER refuse_one BEFORE UPDATE OF state ON steward_jobs
             WHEN NEW.id = {poison} AND NEW.state = 'completed'
             BEGIN SELECT RAISE(ABORT, 'injected: this outcome is refused'); END"
        )
        .as_str(),
    )
    .await
    .expect("create the trigger");
    raw.close().await.expect("close");
    let others: Vec<_> = store
        .enqueue((0..30).map(|_| NewJob::new("noop", "{}")).collect())
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();

    let host = common::host("worker", worker(store.clone()));
    let handle = host.handle.clone();
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
    let service = &handle.status().services[0];
    assert!(
        service.state.is_running() && service.restarts == 0,
        "{service:?}"
    );
    let status = host.stop().await;
    assert!(status.is_success(), "{status:?}");
}

/// While outcomes cannot be written the worker says it is not ready (a
/// load balancer or an orchestrator should know), and ready again once
/// they are written. It used to stay ready throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_is_not_ready_while_outcomes_cannot_be_written() {
    let t = common::open().await;
    let real = Arc::new(t.store);
    let store = Arc::new(Faulty::new(real.clone()));
    let host = common::host("worker", worker(store.clone()));
    let handle = host.handle.clone();
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
    let status = host.stop().await;
    assert!(status.is_success(), "{status:?}");
}
