//! A job that asks for shared state the worker was not given fails at once,
//! with an error naming the type (issue 11, defect 15): retrying cannot
//! help, the worker is configured without it. It used to fail every one of
//! its attempts, 25 by default, with whatever the job made of `None`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steward_core::BoxError;
use steward_core::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};

/// State the test never gives the worker.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_missing_its_state_fails_at_once_naming_the_type() {
    let t = common::open().await;
    let store = Arc::new(t.store);
    let id = store
        .enqueue(vec![NewJob::new("send_mail", "{}")])
        .await
        .expect("enqueue")[0]
        .id;
    let worker = Worker::new(store.clone())
        .register::<SendMail>()
        .and_then(|w| {
            w.config(WorkerConfig {
                queues: vec![QueueConfig {
                    name: "default".into(),
                    concurrency: 1,
                }],
                poll_interval: Duration::from_millis(50),
                ..WorkerConfig::default()
            })
        })
        .expect("a worker");
    let host = common::host("worker", worker);

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
    let status = host.stop().await;
    assert!(status.is_success(), "{status:?}");
}
