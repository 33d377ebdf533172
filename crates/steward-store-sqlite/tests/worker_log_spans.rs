//! Every log line of the worker's own tasks names the worker service, and
//! those about a job name the job too (issue 11, loose end): the outcome
//! writer, the heartbeat and each attempt run in tasks of their own, which
//! used to log with no span at all.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::BoxError;
use steward_core::jobs::{Job, JobContext, Worker, WorkerConfig};
use steward_core::store::{NewJob, Store};
use steward_store_tests::engine::{Faulty, one_queue};

#[derive(Serialize, Deserialize)]
struct Flaky {}

impl Job for Flaky {
    const KIND: &'static str = "flaky";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Err("flaky failed".into())
    }
}

// One thread: every task of the host logs through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn worker_task_logs_name_the_service_and_the_job() {
    let (logs, _guard) = steward_store_tests::logs::capture(tracing::Level::INFO);

    let t = common::open().await;
    let real = Arc::new(t.store);
    let store = Arc::new(Faulty::new(real.clone()));
    let id = real
        .enqueue(vec![NewJob::new("flaky", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let worker = Worker::new(store.clone())
        .register::<Flaky>()
        .config(WorkerConfig {
            heartbeat_every: Duration::from_millis(50),
            poll_interval: Duration::from_millis(50),
            ..one_queue(1)
        });
    let host = common::host("mailer", worker);

    store.refuse_outcomes(true);
    let started = Instant::now();
    let wanted = ["job attempt failed", "cannot record job outcomes"];
    while wanted.iter().any(|w| logs.line_with(w).is_none()) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "lines never logged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.cut(true);
    while logs.line_with("heartbeat failed").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no heartbeat failure logged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.cut(false);
    store.refuse_outcomes(false);

    let attempt = logs.line_with("job attempt failed").expect("logged");
    assert!(attempt.contains("service{name=mailer}"), "{attempt}");
    assert!(attempt.contains(&format!("job{{id={id}")), "{attempt}");
    for line in ["cannot record job outcomes", "heartbeat failed"] {
        let line = logs.line_with(line).expect("logged");
        assert!(line.contains("service{name=mailer}"), "{line}");
    }
    let status = host.stop().await;
    assert!(status.is_success(), "{status:?}");
}
