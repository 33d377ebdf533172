//! User code the worker runs outside a job's own future (here an error whose
//! `Display` panics) is guarded like the job: the attempt fails with the
//! panic message and its slot frees (issue 11, defect 3). The job used to
//! stay `running` forever under renewed heartbeats, holding its slot.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_core::jobs::{Client, Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobState, Store};
use steward_core::{BoxError, Host};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

/// An error whose `Display` panics: user code the worker runs outside the
/// job's own future.
#[derive(Debug)]
struct Hostile;

impl fmt::Display for Hostile {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of a hostile error")
    }
}

impl std::error::Error for Hostile {}

#[derive(Serialize, Deserialize)]
struct Fails {}

impl Job for Fails {
    const KIND: &'static str = "fails";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Err(Box::new(Hostile))
    }
}

#[derive(Serialize, Deserialize)]
struct Hello {}

impl Job for Hello {
    const KIND: &'static str = "hello";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

/// One hostile job on a worker with a single slot, then an ordinary one:
/// the hostile attempt must end `retryable` with `panic` in its error, and
/// the ordinary job must get the slot.
async fn hostile_job_frees_its_slot<J: Job>(hostile: J, panic: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = Arc::new(
        SqliteStore::open(path.to_str().unwrap(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    let client = Client::new(store.clone());
    let worker = Worker::new(store.clone())
        .register::<J>()
        .unwrap()
        .register::<Hello>()
        .unwrap()
        .config(WorkerConfig {
            // One slot: the next job runs only if the hostile one freed it.
            queues: vec![QueueConfig {
                name: "default".into(),
                concurrency: 1,
            }],
            prefetch: 0,
            poll_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        })
        .unwrap();
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let running = tokio::spawn(host.run());

    let hostile = client.enqueue(hostile).await.unwrap();
    let hello = client.enqueue(Hello {}).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let job = store.job(hello).await.unwrap().unwrap();
        if job.state == JobState::Completed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the next job never got the slot: {job:?}\nworker: {:?}",
            handle.status().service("worker")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = store.job(hostile).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Retryable, "{job:?}");
    let error = &job
        .errors
        .last()
        .expect("the attempt's error is recorded")
        .message;
    assert!(
        error.contains("panicked") && error.contains(panic),
        "{error}"
    );
    handle.shutdown();
    let _ = running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_error_display_fails_the_attempt_and_frees_its_slot() {
    hostile_job_frees_its_slot(Fails {}, "Display of a hostile error").await;
}

fn hostile_decode<'de, D: serde::Deserializer<'de>>(_: D) -> Result<u8, D::Error> {
    panic!("a hostile deserializer")
}

#[derive(Serialize, Deserialize)]
struct Picky {
    #[serde(deserialize_with = "hostile_decode")]
    value: u8,
}

impl Job for Picky {
    const KIND: &'static str = "picky";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_payload_decoder_fails_the_attempt_and_frees_its_slot() {
    hostile_job_frees_its_slot(Picky { value: 1 }, "a hostile deserializer").await;
}
