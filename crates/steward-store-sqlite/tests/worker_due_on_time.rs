//! Delays and retries start on time (issue 11, item 14): an idle worker
//! with a long poll interval wakes when the store's earliest delayed job or
//! retry comes due. Before, a retry due in 0.5 s ran at the next poll.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::jobs::{Job, JobContext, JobOptions, RetryPolicy, Worker, WorkerConfig};
use steward_core::store::{NewJob, Store};
use steward_core::{BoxError, Host};
use steward_store_tests::engine::one_queue;

/// Far longer than the test's bounds: only a due-time wake-up passes them.
const POLL: Duration = Duration::from_secs(5);
const DUE_IN: Duration = Duration::from_millis(500);
const PATIENCE: Duration = Duration::from_secs(20);

/// When each run started.
#[derive(Default)]
struct Runs(Mutex<Vec<Instant>>);

impl Runs {
    fn times(&self) -> Vec<Instant> {
        self.0.lock().expect("runs").clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Instant> {
        let started = Instant::now();
        loop {
            let times = self.times();
            if times.len() >= n {
                return times;
            }
            assert!(started.elapsed() < PATIENCE, "only {} runs", times.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Fails its first attempt (retried after [`DUE_IN`]), succeeds after.
#[derive(Serialize, Deserialize)]
struct FailsOnce {}

impl Job for FailsOnce {
    const KIND: &'static str = "fails_once";
    fn options() -> JobOptions {
        JobOptions {
            retry: RetryPolicy::custom(|_| DUE_IN),
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let runs = ctx.state::<Arc<Runs>>().expect("the test's record");
        runs.0.lock().expect("runs").push(Instant::now());
        if ctx.attempt() == 1 {
            return Err("first attempt fails".into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_starts_retries_and_delayed_jobs_when_they_come_due() {
    let t = common::open().await;
    let store = Arc::new(t.store.clone());
    let runs = Arc::new(Runs::default());
    let worker = Worker::new(store.clone())
        .register::<FailsOnce>()
        .config(WorkerConfig {
            poll_interval: POLL,
            ..one_queue(2)
        })
        .state(runs.clone());
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker).expect("register");
    let host = builder.build().expect("a host");
    let handle = host.handle();
    let running = tokio::spawn(host.run());

    // Let the worker go idle, then enqueue a job due in 0.5 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let enqueued = Instant::now();
    store
        .enqueue(vec![NewJob::new("fails_once", "{}").delay(DUE_IN)])
        .await
        .expect("enqueue");
    let times = runs.wait_for(2).await;
    let first = times[0] - enqueued;
    let retry = times[1] - times[0];
    handle.shutdown();
    running.await.expect("the host task");

    // Not before it is due (a little slack for clock rounding), and well
    // before the poll.
    for (what, took) in [("the delayed job", first), ("the retry", retry)] {
        assert!(
            took >= DUE_IN - Duration::from_millis(50) && took < POLL / 2,
            "{what}, due in {DUE_IN:?}, started after {took:?} (poll {POLL:?})"
        );
    }
}
