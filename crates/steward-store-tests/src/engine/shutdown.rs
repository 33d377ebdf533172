//! The worker's time to stop. Jobs that can finish within the drain
//! timeout complete; the rest are released as interrupted. And (issue 11,
//! defect 7) the host gives its whole stop sequence one deadline: the
//! worker drains within what is really left of it, tells running jobs at
//! once that it is stopping, releases what cannot finish, and gets out in
//! time even if the store is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::jobs::{Job, JobContext, Worker, WorkerConfig};
use steward_core::store::{JobId, JobState, NewJob, Store};
use steward_core::{BoxError, Context, ExitStatus, Service};

use super::faulty::Faulty;
use super::kit::{Bench, Nap, Running, host, one_queue, until};
use crate::Harness;

/// The shutdown timeout of the hosts of the last two cases.
const STOP: Duration = Duration::from_secs(10);

/// Runs until it is cancelled (it does not listen for the quieter signal).
#[derive(Serialize, Deserialize)]
struct UntilCancelled {}

impl Job for UntilCancelled {
    const KIND: &'static str = "until_cancelled";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        ctx.token().cancelled().await;
        Err("cancelled".into())
    }
}

#[derive(Default)]
struct Heard {
    /// Whether the job heard that the worker is stopping.
    stopping: AtomicBool,
    /// Whether it had been cancelled by then.
    cancelled_by_then: AtomicBool,
}

/// Wraps up as soon as it hears the worker is stopping.
#[derive(Serialize, Deserialize)]
struct Polite {}

impl Job for Polite {
    const KIND: &'static str = "polite";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let heard = ctx
            .state::<Arc<Heard>>()
            .expect("the case's record")
            .clone();
        ctx.shutting_down().await;
        heard
            .cancelled_by_then
            .store(ctx.is_cancelled(), Ordering::SeqCst);
        heard
            .stopping
            .store(ctx.is_shutting_down(), Ordering::SeqCst);
        Ok(())
    }
}

/// A service that takes `0` to stop once asked.
struct SlowToStop(Duration);

impl Service for SlowToStop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

fn worker<S: Store>(store: Arc<S>) -> Worker<S> {
    Worker::new(store)
        .register::<UntilCancelled>()
        .register::<Polite>()
        .config(WorkerConfig {
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(50),
            ..one_queue(4)
        })
        .state(Arc::new(Heard::default()))
}

async fn wait_running<S: Store>(store: &S, id: JobId) {
    until("the job running", || async {
        store.job(id).await.expect("read").map(|j| j.state) == Some(JobState::Running)
    })
    .await;
}

/// Stops the host; its exit status and how long the stop took.
async fn stop(host: Running) -> (ExitStatus, Duration) {
    let asked = Instant::now();
    let status = host.stop().await;
    (status, asked.elapsed())
}

/// Shutdown timeout 4 s; a service stopped before the worker takes 2.5 s
/// of it. The worker drains within the 1.5 s left, then stops and releases
/// its job, and the host exits cleanly in time. It used to take the whole
/// timeout less 2 s (2 s) from its own stop, so the host aborted it at the
/// deadline in the middle of its drain: nothing released.
pub async fn the_worker_drains_within_what_is_left_of_the_shutdown_timeout<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let store = b.store.clone();
    let id = store
        .enqueue(vec![NewJob::new("until_cancelled", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let host = host(|builder| {
        builder.shutdown_timeout(Duration::from_secs(4));
        builder
            .service("worker", worker(store.clone()))
            .expect("register");
        // Registered last, stopped first.
        builder
            .service("slow", SlowToStop(Duration::from_millis(2_500)))
            .expect("register");
    });
    wait_running(&*store, id).await;

    let (status, took) = stop(host).await;
    // A clean status says the host did not have to abort the worker.
    assert!(status.is_success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let job = store.job(id).await.expect("read").expect("exists");
    assert_eq!(
        (job.state, job.interrupted, job.attempt),
        (JobState::Available, 1, 0),
        "released as interrupted: {job:?}"
    );
}

/// A running job hears that the worker is stopping before anything is
/// cancelled, and may finish: it completes.
pub async fn running_jobs_hear_the_worker_is_stopping_before_they_are_cancelled<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let store = b.store.clone();
    let id = store
        .enqueue(vec![NewJob::new("polite", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let heard = Arc::new(Heard::default());
    let worker = worker(store.clone()).state(heard.clone());
    let host = host(|builder| {
        builder.service("worker", worker).expect("register");
    });
    wait_running(&*store, id).await;

    let (status, _) = stop(host).await;
    assert!(status.is_success(), "{status:?}");
    assert!(heard.stopping.load(Ordering::SeqCst), "the job heard it");
    assert!(
        !heard.cancelled_by_then.load(Ordering::SeqCst),
        "it was not cancelled yet when it heard"
    );
    let job = store.job(id).await.expect("read").expect("exists");
    assert_eq!(job.state, JobState::Completed, "{job:?}");
}

/// The store is unreachable when the worker stops, with a job to release
/// and an outcome to write: the worker says so and gets out within the
/// shutdown timeout by itself (the host does not have to abort it). The
/// outcome writer used to retry until the host aborted the worker.
pub async fn the_worker_stops_in_time_when_the_store_is_unreachable<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let real = b.store.clone();
    let store = Arc::new(Faulty::new(real.clone()));
    // One job to release, one that completes as the worker stops: an
    // outcome to write.
    let ids: Vec<JobId> = real
        .enqueue(vec![
            NewJob::new("until_cancelled", "{}"),
            NewJob::new("polite", "{}"),
        ])
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();
    let host = host(|builder| {
        builder.shutdown_timeout(Duration::from_secs(3));
        builder
            .service("worker", worker(store.clone()))
            .expect("register");
    });
    for id in &ids {
        wait_running(&*real, *id).await;
    }

    store.cut(true);
    let (status, took) = stop(host).await;
    assert!(
        status.is_success(),
        "the worker stopped by itself: {status:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// At shutdown, jobs that finish within the drain timeout complete.
pub async fn shutdown_lets_running_jobs_finish_within_the_drain_timeout<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Nap {
            ms: 700,
            stubborn: false,
        })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    b.wait_state(id, JobState::Running).await;
    assert!(w.stop().await.is_success());
    let job = b.job(id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
}

/// Jobs that cannot finish within the drain timeout are stopped and released
/// at once as interrupted (not failed), and run again at the next start.
pub async fn shutdown_releases_jobs_that_cannot_finish_as_interrupted<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Nap {
            ms: 60_000,
            stubborn: false,
        })
        .await
        .expect("enqueue")
        .id;
    let mut config = b.config(&[("default", 1)]);
    config.drain_timeout = Some(Duration::from_millis(300));
    let w = b.start(config.clone(), STOP);
    b.wait_state(id, JobState::Running).await;
    assert!(w.stop().await.is_success());
    let job = b.job(id).await;
    assert_eq!(job.state, JobState::Available, "{job:?}");
    assert_eq!(job.attempt, 0, "an interrupted attempt is not counted");
    assert_eq!(job.interrupted, 1);
    assert!(
        job.errors.is_empty(),
        "interrupted is not failed: {:?}",
        job.errors
    );
    // The next worker runs it again; this time it may finish.
    let w = b.start(config, STOP);
    b.wait_state(id, JobState::Running).await;
    let cancel = b.client.cancel(id).await.expect("cancel");
    assert_eq!(cancel, steward_core::store::CancelResult::Requested);
    b.wait_state(id, JobState::Cancelled).await;
    assert!(w.stop().await.is_success());
}
