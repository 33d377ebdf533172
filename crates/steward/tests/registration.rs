//! The registration chain (issue 12, item 4): a worker's and maintenance's
//! settings are given without a `?` per call; every mistake is collected
//! and reported by `HostBuilder::build`, naming the service and each
//! problem, before anything runs.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{Ping, builder, store_in};
use serde::{Deserialize, Serialize};
use steward::jobs::{Job, JobContext, Maintenance, MaintenanceConfig, Worker, WorkerConfig};
use steward::sqlite::SqliteStore;
use steward::{BoxError, ConfigError, Context, Service};

#[derive(Serialize, Deserialize)]
struct Pong;

impl Job for Pong {
    const KIND: &'static str = "pong";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

async fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    (dir, store)
}

fn problems_of(err: &ConfigError, service: &str) -> Vec<String> {
    match err {
        ConfigError::Service { name, problems } if name == service => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected a problem with service `{service}`, got {other:?}"),
    }
}

#[tokio::test]
async fn a_correct_chain_needs_no_question_marks_and_builds() {
    let (_dir, store) = store().await;
    let worker = Worker::new(store.clone())
        .register::<Ping>()
        .register::<Pong>()
        .queue("default", 4)
        .queue("low", 1);
    let mut builder = builder();
    builder.service("worker", worker).unwrap();
    builder
        .service("maintenance", Maintenance::new(store))
        .unwrap();
    builder.build().unwrap();
}

#[tokio::test]
async fn every_worker_mistake_is_reported_at_build_naming_the_service() {
    let (_dir, store) = store().await;
    let worker = Worker::new(store)
        .register::<Ping>()
        .register::<Ping>()
        .queue("default", 0)
        .queue("low", 2)
        .queue("low", 3);
    let mut builder = builder();
    builder.service("jobs", worker).unwrap();
    let err = builder.build().expect_err("build must refuse the worker");
    let problems = problems_of(&err, "jobs");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].contains("`ping` is registered twice"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("queue `default` has concurrency 0"),
        "{problems:?}"
    );
    assert!(
        problems[2].contains("`low` is configured twice"),
        "{problems:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("service `jobs` is misconfigured: "),
        "{text}"
    );
    for problem in &problems {
        assert!(text.contains(problem.as_str()), "{text} lacks {problem}");
    }
}

#[tokio::test]
async fn a_bad_whole_config_is_reported_at_build() {
    let (_dir, store) = store().await;
    let config = WorkerConfig {
        poll_interval: Duration::ZERO,
        ..WorkerConfig::default()
    };
    let worker = Worker::new(store.clone()).register::<Ping>().config(config);
    let maintenance = Maintenance::new(store).config(MaintenanceConfig {
        leader_every: Duration::from_secs(20),
        leader_ttl: Duration::from_secs(10),
        ..MaintenanceConfig::default()
    });
    let mut builder = builder();
    builder.service("maintenance", maintenance).unwrap();
    builder.service("worker", worker).unwrap();
    let err = builder.build().expect_err("build must refuse");
    // The first service registered with a problem is the one named.
    let problems = problems_of(&err, "maintenance");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("leader"), "{problems:?}");
}

/// A user's own service can report its configuration mistakes the same way.
struct Mailer {
    relay: String,
}

impl Service for Mailer {
    fn check(&self) -> Vec<ConfigError> {
        if self.relay.is_empty() {
            vec![ConfigError::Invalid {
                what: "mailer",
                reason: "no relay host".to_string(),
            }]
        } else {
            Vec::new()
        }
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

#[test]
fn a_services_own_check_is_reported_at_build() {
    let mut first = builder();
    first
        .service(
            "mailer",
            Mailer {
                relay: String::new(),
            },
        )
        .unwrap();
    let err = first.build().expect_err("build must refuse the mailer");
    assert_eq!(
        problems_of(&err, "mailer"),
        ["invalid mailer: no relay host"]
    );

    let mut builder = self::builder();
    builder
        .service(
            "mailer",
            Mailer {
                relay: "smtp.example.com".into(),
            },
        )
        .unwrap();
    builder.build().unwrap();
}

/// The problems can be read before any host is built (by a library that
/// wraps the worker, or a test).
#[tokio::test]
async fn a_workers_problems_can_be_read_before_build() {
    let (_dir, store) = store().await;
    let worker = Worker::new(store).register::<Ping>().queue("default", 0);
    let problems = worker.check();
    assert_eq!(problems.len(), 1, "{problems:?}");
}
