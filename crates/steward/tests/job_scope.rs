//! A scope inside a job (issue 12, item 3): `&ctx` is the cancel signal
//! (`JobContext: CancelSignal`), so a unit the job's timeout cuts off is
//! released as cancelled at once, not left holding its resource; the job
//! saved a checkpoint before it and reads shared state through `ctx`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward::jobs::{Client, Job, JobContext, JobOptions, Worker};
use steward::store::{JobState, Store};
use steward::{BoxError, Host, Scope, ScopeFactory, UnitOutcome};

/// Counts how units end (shared state, given to the worker).
#[derive(Default)]
struct Releases {
    cancelled: AtomicUsize,
    other: AtomicUsize,
}

struct Connections(Arc<Releases>);

impl ScopeFactory for Connections {
    type Resource = u32;
    async fn acquire(&self) -> Result<u32, BoxError> {
        Ok(7)
    }
    async fn release(&self, _conn: u32, outcome: UnitOutcome) {
        let counter = if outcome == UnitOutcome::Cancelled {
            &self.0.cancelled
        } else {
            &self.0.other
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Serialize, Deserialize)]
struct Import {}

impl Job for Import {
    const KIND: &'static str = "import";
    fn options() -> JobOptions {
        JobOptions {
            timeout: Some(Duration::from_millis(300)),
            max_attempts: 1,
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let releases = ctx.state::<Arc<Releases>>()?.clone();
        let scope = Scope::new(Connections(releases));
        ctx.save_checkpoint(&"batch 1 done").await?;
        // A unit that would outlive the job's timeout: `&ctx` cuts it off.
        scope
            .run_until_cancelled(&ctx, async |_conn: &mut u32| {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_in_a_job_ends_with_the_jobs_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        steward::connect(&format!(
            "sqlite://{}",
            dir.path().join("jobs.db").display()
        ))
        .await
        .expect("connect"),
    );
    store.migrate().await.expect("migrate");
    let id = Client::new(store.clone())
        .enqueue(Import {})
        .await
        .expect("enqueue")
        .id;
    let releases = Arc::new(Releases::default());
    let mut host = Host::builder();
    host.handle_signals(false);
    host.service(
        "worker",
        Worker::new(store.clone())
            .register::<Import>()
            .queue("default", 1)
            .state(releases.clone()),
    )
    .expect("worker");
    let host = host.build().expect("build");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = store.job(id).await.expect("read").expect("exists");
        if job.state == JobState::Dead {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the job never timed out: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    handle.shutdown();
    running.await.expect("the host");
    assert_eq!(
        releases.cancelled.load(Ordering::SeqCst),
        1,
        "the unit was not released as cancelled"
    );
    assert_eq!(releases.other.load(Ordering::SeqCst), 0);
    assert_eq!(job.checkpoint.as_deref(), Some("\"batch 1 done\""));
}
