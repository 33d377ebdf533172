//! A job that stops early because the worker is stopping (issue 12, found
//! by a new user): it saves a checkpoint and returns `Cancelled` (what
//! `ctx.sleep(..).await?` returns once the worker stops), and is released:
//! available again, no attempt used, no error recorded. Before, the early
//! return was a failure that used up an attempt, and the docs did not say
//! what to return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward::jobs::{Client, Job, JobContext, Worker};
use steward::store::{JobState, Store};
use steward::{BoxError, Host};

#[derive(Serialize, Deserialize)]
struct Batches {
    total: u32,
}

impl Job for Batches {
    const KIND: &'static str = "batches";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let start: u32 = ctx.checkpoint()?.unwrap_or(0);
        for batch in start..self.total {
            ctx.save_checkpoint(&(batch + 1)).await?;
            // Ends with `Cancelled` as soon as the worker begins to stop.
            ctx.sleep(Duration::from_millis(200)).await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_returns_cancelled_at_shutdown_is_released_not_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let store = Arc::new(steward::connect(&url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    let id = Client::new(store.clone())
        .enqueue(Batches { total: 1000 })
        .await
        .expect("enqueue")
        .id;
    let mut host = Host::builder();
    host.handle_signals(false);
    host.shutdown_timeout(Duration::from_secs(60));
    host.service("worker", Worker::new(store.clone()).register::<Batches>())
        .expect("worker");
    let host = host.build().expect("build");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = store.job(id).await.expect("read").expect("exists");
        if job.checkpoint.as_deref() == Some("2") {
            break;
        }
        assert!(Instant::now() < deadline, "the job never ran: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    handle.shutdown();
    running.await.expect("the host");
    // It stopped at once, not after a drain of most of a minute.
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    let job = store.job(id).await.expect("read").expect("exists");
    assert_eq!(job.state, JobState::Available, "{job:?}");
    assert_eq!(
        job.errors.len(),
        0,
        "the early return was recorded as a failure: {job:?}"
    );
    let saved: u32 = job
        .checkpoint
        .as_deref()
        .expect("a checkpoint")
        .parse()
        .expect("a number");
    assert!(saved >= 2, "{job:?}");
}

/// Ignores every stop: it returns only when its sleep is over.
#[derive(Serialize, Deserialize)]
struct Stubborn;

impl Job for Stubborn {
    const KIND: &'static str = "stubborn";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

/// A job that ignores the stop is named (by id) when it is aborted, as a
/// service that ignores it is (found by a second new-user trial: the log
/// said only how many jobs were still running).
// Single-threaded, so the subscriber set for this thread sees the worker's
// events.
#[tokio::test(flavor = "current_thread")]
async fn a_job_that_ignores_the_stop_is_named_when_aborted() {
    let (logs, guard) = steward_store_tests::logs::capture(tracing::Level::INFO);

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let store = Arc::new(steward::connect(&url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    let id = Client::new(store.clone())
        .enqueue(Stubborn)
        .await
        .expect("enqueue")
        .id;
    let mut host = Host::builder();
    host.handle_signals(false);
    host.shutdown_timeout(Duration::from_secs(3));
    host.service("worker", Worker::new(store.clone()).register::<Stubborn>())
        .expect("worker");
    let host = host.build().expect("build");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.job(id).await.expect("read").expect("exists").state != JobState::Running {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown();
    running.await.expect("the host");
    let job = store.job(id).await.expect("read").expect("exists");
    // Steward's panic hook logs through tracing: a failed assertion must not
    // vanish into the captured logs.
    drop(guard);
    let logs = logs.text();
    assert_eq!(job.state, JobState::Available, "released: {job:?}\n{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("ignored the stop") && l.contains(&id.to_string())),
        "{logs}"
    );
}
