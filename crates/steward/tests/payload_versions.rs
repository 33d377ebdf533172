//! Payload versions (issue 13, item 6): a job kind declares the version of
//! its payload and how to upgrade older ones, so jobs enqueued by the
//! previous release still run after a deploy. Each test writes rows with an
//! "old" definition (`v1`), or a "newer" one (`v3`), and runs them with the
//! current one (`v2`) in a real worker under a host, on SQLite.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward::ExitStatus;
use steward::jobs::{Client, Worker};
use steward::sqlite::SqliteStore;
use steward::store::{ErrorKind, JobId, JobRecord, JobState, NewJob, Store};

/// What the v2 jobs saw when they ran: (title, pages). Each test uses its
/// own titles, as tests in this file run in parallel.
static RAN: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

fn ran(title: &str) -> Vec<(String, u32)> {
    RAN.lock()
        .expect("no test panics holding it")
        .iter()
        .filter(|(t, _)| t == title)
        .cloned()
        .collect()
}

/// The previous release's definition.
mod v1 {
    use serde::{Deserialize, Serialize};
    use steward::BoxError;
    use steward::jobs::{Job, JobContext};

    #[derive(Serialize, Deserialize)]
    pub struct Report {
        pub name: String,
    }

    impl Job for Report {
        const KIND: &'static str = "report";
        const VERSION: u32 = 1;
        async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
            Err("the old release's worker must not run in these tests".into())
        }
    }
}

/// The current release's definition: `name` became `title`, and `pages`
/// was added.
mod v2 {
    use serde::{Deserialize, Serialize};
    use steward::BoxError;
    use steward::jobs::{Job, JobContext};

    #[derive(Serialize, Deserialize)]
    pub struct Report {
        pub title: String,
        pub pages: u32,
    }

    impl Job for Report {
        const KIND: &'static str = "report";
        const VERSION: u32 = 2;

        fn upgrade(
            from: u32,
            mut payload: serde_json::Value,
        ) -> Result<serde_json::Value, BoxError> {
            if from != 1 {
                return Err(format!("no upgrade from version {from}").into());
            }
            let name = payload
                .get_mut("name")
                .map(serde_json::Value::take)
                .ok_or("a version 1 report has a name")?;
            if name.as_str().is_some_and(str::is_empty) {
                return Err("a version 1 report with an empty name has no title".into());
            }
            Ok(serde_json::json!({ "title": name, "pages": 1 }))
        }

        async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
            super::RAN
                .lock()
                .expect("no test panics holding it")
                .push((self.title, self.pages));
            Ok(())
        }
    }
}

/// A release newer than the worker's: its payloads are version 3.
mod v3 {
    use serde::{Deserialize, Serialize};
    use steward::BoxError;
    use steward::jobs::{Job, JobContext};

    #[derive(Serialize, Deserialize)]
    pub struct Report {
        pub title: String,
        pub pages: u32,
        pub format: String,
    }

    impl Job for Report {
        const KIND: &'static str = "report";
        const VERSION: u32 = 3;
        async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
            Ok(())
        }
    }
}

/// Runs a worker of the current release (v2) under a host until `done`
/// says every job it waits for is settled, then stops the host and checks
/// it exited cleanly: no payload may stop the worker.
async fn run_new_release(
    store: &Arc<SqliteStore>,
    ids: &[JobId],
    done: impl Fn(&[JobRecord]) -> bool,
) -> Vec<JobRecord> {
    let mut host = common::builder();
    host.service(
        "worker",
        Worker::new(store.clone()).register::<v2::Report>(),
    )
    .expect("register the worker");
    let host = host.build().expect("build the host");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    let deadline = Instant::now() + Duration::from_secs(20);
    let jobs = loop {
        let mut jobs = Vec::new();
        for id in ids {
            jobs.push(store.job(*id).await.expect("read").expect("exists"));
        }
        if done(&jobs) {
            break jobs;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs never settled: {jobs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    handle.shutdown();
    let exit = running.await.expect("the host's task");
    assert_eq!(
        exit,
        ExitStatus::Clean,
        "the worker did not survive: {exit:?}"
    );
    jobs
}

/// The one error of a job that failed once, checked to be a payload error.
fn payload_error(job: &JobRecord) -> &str {
    assert_eq!(job.errors.len(), 1, "{job:#?}");
    assert_eq!(job.errors[0].kind, ErrorKind::Payload, "{job:#?}");
    &job.errors[0].message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_enqueued_by_the_old_release_run_upgraded_after_the_deploy() {
    let store = steward::testing::sqlite().await;
    let client = Client::new(store.clone());
    // The old release enqueues, then is replaced before its jobs run.
    let old = client
        .enqueue(v1::Report {
            name: "Q3 review".into(),
        })
        .await
        .expect("enqueue v1")
        .id;
    let rejected = client
        .enqueue(v1::Report {
            name: String::new(),
        })
        .await
        .expect("enqueue v1")
        .id;
    let current = client
        .enqueue(v2::Report {
            title: "Q4 plan".into(),
            pages: 12,
        })
        .await
        .expect("enqueue v2")
        .id;
    let stored = store.job(old).await.expect("read").expect("exists");
    assert_eq!(stored.payload_version, 1, "{stored:#?}");

    let jobs = run_new_release(&store, &[old, rejected, current], |jobs| {
        jobs.iter().all(|j| j.state.is_final())
    })
    .await;

    assert_eq!(jobs[0].state, JobState::Completed, "{:#?}", jobs[0]);
    assert_eq!(ran("Q3 review"), vec![("Q3 review".to_string(), 1)]);
    // The upgrade refused it: dead at once, as no retry can help, with an
    // error that says which kind, which version and why.
    assert_eq!(jobs[1].state, JobState::Dead, "{:#?}", jobs[1]);
    let message = payload_error(&jobs[1]);
    assert!(message.contains("`report`"), "{message}");
    assert!(message.contains("version 1"), "{message}");
    assert!(message.contains("empty name has no title"), "{message}");
    // The rest of the queue ran.
    assert_eq!(jobs[2].state, JobState::Completed, "{:#?}", jobs[2]);
    assert_eq!(ran("Q4 plan"), vec![("Q4 plan".to_string(), 12)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_from_a_newer_release_is_retried_for_a_worker_of_that_release() {
    let store = steward::testing::sqlite().await;
    // A rolling deploy: the new release enqueues while old workers still run.
    let newer = Client::new(store.clone())
        .enqueue(v3::Report {
            title: "Q1 outlook".into(),
            pages: 3,
            format: "pdf".into(),
        })
        .await
        .expect("enqueue v3")
        .id;
    let jobs = run_new_release(&store, &[newer], |jobs| !jobs[0].errors.is_empty()).await;
    let job = &jobs[0];
    assert_eq!(job.state, JobState::Retryable, "not dead: {job:#?}");
    assert_eq!(job.payload_version, 3, "{job:#?}");
    let message = payload_error(job);
    assert!(
        message.contains("payload version 3 is newer than this worker's (2)"),
        "{message}"
    );
    assert!(message.contains("newer release"), "{message}");
    assert!(ran("Q1 outlook").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_not_of_the_current_shape_is_dead_with_a_clear_error() {
    let store = steward::testing::sqlite().await;
    let mut garbled = NewJob::new("report", r#"{"title": 7}"#);
    garbled.payload_version = 2;
    let garbled = store.enqueue(vec![garbled]).await.expect("enqueue")[0].id;
    let after = Client::new(store.clone())
        .enqueue(v2::Report {
            title: "after the garbled one".into(),
            pages: 2,
        })
        .await
        .expect("enqueue v2")
        .id;
    let jobs = run_new_release(&store, &[garbled, after], |jobs| {
        jobs.iter().all(|j| j.state.is_final())
    })
    .await;
    assert_eq!(jobs[0].state, JobState::Dead, "{:#?}", jobs[0]);
    let message = payload_error(&jobs[0]);
    assert!(message.contains("`report`"), "{message}");
    assert!(message.contains("version 2"), "{message}");
    assert!(message.contains("invalid type"), "serde's error: {message}");
    assert_eq!(jobs[1].state, JobState::Completed, "{:#?}", jobs[1]);
    assert_eq!(
        ran("after the garbled one"),
        vec![("after the garbled one".to_string(), 2)]
    );
}

/// A schedule declared with a typed job stores the kind's payload version;
/// the next release's declaration (v2) updates it, and the jobs its ticks
/// and a manual trigger enqueue carry version 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_takes_the_payload_version_of_its_declared_job() {
    use steward::jobs::{Scheduler, Schedules};
    use steward::store::ScheduleDef;

    let store = steward::testing::sqlite().await;
    // Every second, so that a step finds a tick due at once.
    let def = || ScheduleDef::at("report", "* * * * * *");
    let old = Scheduler::new(store.clone()).job(
        def(),
        &v1::Report {
            name: "daily".into(),
        },
    );
    old.declare().await.expect("the old release declares");
    let saved = store
        .schedule("report")
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(saved.def.payload_version, 1, "{saved:#?}");

    let mut new = Scheduler::new(store.clone()).job(
        def(),
        &v2::Report {
            title: "daily".into(),
            pages: 4,
        },
    );
    new.declare().await.expect("the new release declares");
    let saved = store
        .schedule("report")
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(saved.def.payload_version, 2, "updated: {saved:#?}");

    let triggered = Schedules::new(store.clone())
        .trigger("report")
        .await
        .expect("trigger");
    let job = store.job(triggered).await.expect("read").expect("enqueued");
    assert_eq!(job.payload_version, 2, "{job:#?}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let fired = loop {
        // The first step arms the schedule; a later one fires its tick.
        new.step_once().await.expect("step");
        let record = store
            .schedule("report")
            .await
            .expect("read")
            .expect("saved");
        if let Some(job) = record.last_job {
            break job;
        }
        assert!(Instant::now() < deadline, "the schedule never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let job = store.job(fired).await.expect("read").expect("enqueued");
    assert_eq!(job.payload_version, 2, "a tick's job: {job:#?}");
}
