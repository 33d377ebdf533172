//! A queue paused in the store is honoured by a running worker within one
//! poll interval, on SQLite and on PostgreSQL: no new claims from it (jobs
//! already running finish, buffered ones are given back), other queues
//! run on, jobs enqueued meanwhile wait, and a resume lets them all run.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use steward::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward::store::{JobQuery, JobRecord, JobState, NewJob, QueueChange, Store};
use steward::{BoxError, testing};

/// Long enough that jobs are running when the pause lands.
const JOB_TAKES: Duration = Duration::from_millis(150);
const POLL: Duration = Duration::from_millis(200);
/// What a test waits for something that should happen (generous: a loaded
/// machine is slow; nothing here asserts on speed).
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct Work;

impl Job for Work {
    const KIND: &'static str = "work";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        ctx.sleep(JOB_TAKES).await?;
        Ok(())
    }
}

async fn enqueue<S: Store>(store: &S, queue: &str, n: usize) {
    let jobs = (0..n)
        .map(|_| NewJob::new(Work::KIND, "null").queue(queue))
        .collect();
    store.enqueue(jobs).await.expect("enqueue");
}

async fn jobs_of<S: Store>(store: &S, queue: &str) -> Vec<JobRecord> {
    store
        .jobs(JobQuery::default().queue(queue).limit(1000))
        .await
        .expect("jobs")
}

async fn count<S: Store>(store: &S, queue: &str, state: JobState) -> usize {
    jobs_of(store, queue)
        .await
        .iter()
        .filter(|j| j.state == state)
        .count()
}

/// Waits until `queue` has at least `n` jobs in `state`.
async fn wait_for<S: Store>(store: &S, queue: &str, state: JobState, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let have = count(store, queue, state).await;
        if have >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue `{queue}` has {have} {state} jobs, waited {PATIENCE:?} for {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn pause_is_honoured_within_a_poll_interval<S: Store>(store: Arc<S>) {
    enqueue(&*store, "mail", 40).await;
    let config = WorkerConfig {
        queues: vec![
            QueueConfig {
                name: "mail".into(),
                concurrency: 2,
            },
            QueueConfig {
                name: "other".into(),
                concurrency: 2,
            },
        ],
        poll_interval: POLL,
        ..WorkerConfig::default()
    };
    let worker = Worker::new(store.clone()).register::<Work>().config(config);
    let mut builder = common::builder();
    builder.service("worker", worker).expect("a worker");
    let s = &*store;
    testing::with_host(builder, async |_handle| {
        wait_for(s, "mail", JobState::Completed, 2).await;

        assert_eq!(
            s.pause_queue("mail").await.expect("pause"),
            QueueChange::Changed
        );
        // A claim already in flight may still land just after the pause is
        // read: one poll interval, plus slack for a slow machine.
        let settled: DateTime<Utc> =
            Utc::now() + TimeDelta::from_std(POLL).expect("a delta") + TimeDelta::milliseconds(500);
        // Jobs enqueued while paused wait; other queues run on.
        enqueue(s, "mail", 3).await;
        enqueue(s, "other", 4).await;
        wait_for(s, "other", JobState::Completed, 4).await;
        tokio::time::sleep_until(tokio::time::Instant::now() + POLL * 2 + Duration::from_secs(1))
            .await;
        let mail = jobs_of(s, "mail").await;
        let late: Vec<_> = mail
            .iter()
            .filter(|j| j.attempted_at.is_some_and(|t| t > settled))
            .map(|j| j.id)
            .collect();
        assert!(
            late.is_empty(),
            "mail jobs claimed after the pause settled: {late:?}"
        );
        let running = mail.iter().filter(|j| j.state == JobState::Running).count();
        assert_eq!(
            running, 0,
            "running mail jobs finish and buffered ones are given back"
        );
        let waiting = mail
            .iter()
            .filter(|j| j.state == JobState::Available)
            .count();
        assert!(
            waiting >= 3,
            "mail jobs wait while paused ({waiting} available)"
        );
        let completed_while_paused = count(s, "mail", JobState::Completed).await;
        tokio::time::sleep(POLL * 3).await;
        assert_eq!(
            count(s, "mail", JobState::Completed).await,
            completed_while_paused,
            "nothing of mail runs while it is paused"
        );

        assert_eq!(
            s.resume_queue("mail").await.expect("resume"),
            QueueChange::Changed
        );
        wait_for(s, "mail", JobState::Completed, 43).await;
        let done = jobs_of(s, "mail").await;
        assert!(
            done.iter().all(|j| j.attempt == 1 && j.errors.is_empty()),
            "every mail job ran once, without an error"
        );
    })
    .await
    .expect("the host builds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_honours_a_pause_and_a_resume_within_a_poll_interval() {
    let store = testing::sqlite().await;
    pause_is_honoured_within_a_poll_interval(store.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_worker_honours_a_pause_and_a_resume_within_a_poll_interval() {
    let store = testing::postgres().await;
    pause_is_honoured_within_a_poll_interval(store.store()).await;
}
