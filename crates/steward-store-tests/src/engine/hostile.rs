//! User code that misbehaves where the worker calls it outside a job's own
//! future, and jobs the worker was not configured for (issue 11, defects 3
//! and 15).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::BoxError;
use steward_core::jobs::{Client, Job, JobContext, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};

use super::kit::{Bench, host, one_queue};
use crate::Harness;

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

/// One hostile job on a worker with a single slot, then an ordinary one:
/// the hostile attempt must end `retryable` with `panic` in its error, and
/// the ordinary job must get the slot.
async fn hostile_job_frees_its_slot<H: Harness, J: Job>(h: &H, hostile: J, panic: &str) {
    let b = Bench::new(h).await;
    let store = b.store.clone();
    let client = Client::new(store.clone());
    let worker = Worker::new(store.clone())
        .register::<J>()
        .register::<Hello>()
        // One slot: the next job runs only if the hostile one freed it.
        .config(WorkerConfig {
            prefetch: 0,
            poll_interval: Duration::from_millis(50),
            ..one_queue(1)
        });
    let running = host(|builder| {
        builder.service("worker", worker).expect("register");
    });
    let handle = running.handle.clone();

    let hostile = client.enqueue(hostile).await.expect("enqueue").id;
    let hello = client.enqueue(Hello {}).await.expect("enqueue").id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let job = store.job(hello).await.expect("read").expect("exists");
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
    let job = store.job(hostile).await.expect("read").expect("exists");
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
    let _ = running.stop().await;
}

/// An error whose `Display` panics fails the attempt with the panic
/// message, and its slot frees. The job used to stay `running` forever
/// under renewed heartbeats, holding its slot.
pub async fn a_panicking_error_display_fails_the_attempt_and_frees_its_slot<H: Harness>(h: &H) {
    hostile_job_frees_its_slot(h, Fails {}, "Display of a hostile error").await;
}

/// A payload decoder that panics fails the attempt with the panic message,
/// and its slot frees.
pub async fn a_panicking_payload_decoder_fails_the_attempt_and_frees_its_slot<H: Harness>(h: &H) {
    hostile_job_frees_its_slot(h, Picky { value: 1 }, "a hostile deserializer").await;
}

/// State the case never gives the worker.
struct MailSettings;

#[derive(Serialize, Deserialize)]
struct SendMail {}

impl Job for SendMail {
    const KIND: &'static str = "send_mail";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let _settings = ctx.state::<MailSettings>()?;
        Ok(())
    }
}

/// A job that asks for shared state the worker was not given fails at
/// once, with an error naming the type: retrying cannot help, the worker is
/// configured without it. It used to fail every one of its attempts, 25 by
/// default, with whatever the job made of `None`.
pub async fn a_job_missing_its_state_fails_at_once_naming_the_type<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let store: Arc<H::Store> = b.store.clone();
    let id = store
        .enqueue(vec![NewJob::new("send_mail", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let worker = Worker::new(store.clone())
        .register::<SendMail>()
        .config(WorkerConfig {
            poll_interval: Duration::from_millis(50),
            ..one_queue(1)
        });
    let running = host(|builder| {
        builder.service("worker", worker).expect("register");
    });

    let started = Instant::now();
    let job = loop {
        let job = store.job(id).await.expect("read").expect("exists");
        if job.state.is_final() || job.state == JobState::Retryable {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{job:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(job.state, JobState::Dead, "no retry can help: {job:?}");
    assert_eq!(job.attempt, 1);
    let message = &job.errors[0].message;
    assert!(
        message.contains("MailSettings") && message.contains("Worker::state"),
        "the error names the missing type and how to give it: {message}"
    );
    let status = running.stop().await;
    assert!(status.is_success(), "{status:?}");
}
