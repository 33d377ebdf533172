//! `steward::testing` (issue 13, item 5): users' tests of their own jobs,
//! written with the helpers, never sleep. Each helper is tried as a user
//! would: a job run with a test context, a queue drained with nested
//! enqueues, retries and delays brought due by time travel, a schedule's
//! days passing at once, what was enqueued asserted, a host in one call.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward::jobs::{
    Client, DrainOutcome, EnqueueOptions, Job, JobContext, JobControl, Scheduler, SchedulerConfig,
    Worker,
};
use steward::store::{Misfire, ScheduleDef, Store};
use steward::testing::{self, TestRun, assert_enqueued, assert_not_enqueued, enqueued};
use steward::{BoxError, ExitStatus, Host};

/// Signs a user up, then asks for a welcome email.
#[derive(Debug, Serialize, Deserialize)]
struct SignUp {
    email: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Welcome {
    to: String,
}

impl Job for SignUp {
    const KIND: &'static str = "sign_up";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let client = ctx.state::<Client<steward::sqlite::SqliteStore>>()?;
        client.enqueue(Welcome { to: self.email }).await?;
        Ok(())
    }
}

impl Job for Welcome {
    const KIND: &'static str = "welcome";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Fails its first two attempts, saving how far it got each time.
#[derive(Debug, Serialize, Deserialize)]
struct Flaky;

impl Job for Flaky {
    const KIND: &'static str = "flaky";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        ctx.save_checkpoint(&ctx.attempt()).await?;
        if ctx.attempt() < 3 {
            return Err(format!("attempt {} failed", ctx.attempt()).into());
        }
        if ctx.is_cancelled() {
            return Err(JobControl::Cancel("told to stop".into()).into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_job_runs_with_a_test_context() {
    let first = TestRun::new().run(Flaky).await;
    assert_eq!(first.error().as_deref(), Some("attempt 1 failed"));
    assert_eq!(first.last_checkpoint::<u32>(), Some(1));
    let third = TestRun::new().attempt(3).run(Flaky).await;
    assert!(third.is_ok(), "{:?}", third.error());
    let stopped = TestRun::new().attempt(3).cancelled().run(Flaky).await;
    assert!(
        matches!(stopped.control(), Some(JobControl::Cancel(reason)) if reason == "told to stop")
    );
}

#[tokio::test]
async fn a_job_that_needs_state_the_test_did_not_give_says_so() {
    let outcome = TestRun::new()
        .run(SignUp {
            email: "a@example.com".into(),
        })
        .await;
    let error = outcome.error().unwrap_or_default();
    assert!(
        error.contains("not given state of type") && error.contains("Client"),
        "{error}"
    );
}

fn worker(
    store: &testing::TempStore<steward::sqlite::SqliteStore>,
) -> Worker<steward::sqlite::SqliteStore> {
    Worker::new(store.store())
        .register::<SignUp>()
        .register::<Welcome>()
        .register::<Flaky>()
        .state(Client::new(store.store()))
}

#[tokio::test]
async fn drain_runs_due_jobs_in_order_with_what_they_enqueue() {
    let store = testing::sqlite().await;
    let client = Client::new(store.store());
    client
        .enqueue(SignUp {
            email: "a@example.com".into(),
        })
        .await
        .expect("enqueue");
    // What the sign-up will enqueue is not there yet.
    assert_not_enqueued::<Welcome, _>(&**store, |_| true).await;
    let drained = worker(&store).drain("default").await.expect("drain");
    let kinds: Vec<&str> = drained.ran.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["sign_up", "welcome"], "the nested job ran too");
    assert!(drained.all_completed() && !drained.more);
    assert!(
        enqueued::<Welcome, _>(&**store)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn assert_enqueued_finds_a_job_by_its_fields_and_lists_the_others_when_none_matches() {
    let store = testing::sqlite().await;
    let client = Client::new(store.store());
    let opts = EnqueueOptions::default().queue("mail");
    client
        .enqueue_with(
            Welcome {
                to: "b@example.com".into(),
            },
            opts,
        )
        .await
        .expect("enqueue");
    let found = assert_enqueued::<Welcome, _>(&**store, |e| e.job.to == "b@example.com").await;
    assert_eq!(found.record.queue, "mail");
    let missing = tokio::spawn(async move {
        assert_enqueued::<Welcome, _>(&**store, |e| e.job.to == "c@example.com").await;
    })
    .await
    .expect_err("no such job: the assertion panics");
    let message = missing.into_panic();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("b@example.com"),
        "the waiting jobs are listed: {message}"
    );
}

#[tokio::test]
async fn retries_and_delays_come_due_by_time_travel_not_by_sleeping() {
    let store = testing::sqlite().await;
    let client = Client::new(store.store());
    client.enqueue(Flaky).await.expect("enqueue");
    let later = EnqueueOptions::default().after(Duration::from_secs(3600));
    client
        .enqueue_with(
            Welcome {
                to: "later@example.com".into(),
            },
            later,
        )
        .await
        .expect("enqueue");
    let worker = worker(&store);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let drained = worker.drain("default").await.expect("drain");
        let [ran] = drained.ran.as_slice() else {
            panic!("one job due each time: {drained:?}");
        };
        assert_eq!(ran.kind, "flaky");
        if let DrainOutcome::Retried { after, .. } = &ran.outcome {
            store.time_travel(*after).await.expect("travel");
        }
        outcomes.push(ran.outcome.clone());
    }
    assert!(matches!(outcomes[0], DrainOutcome::Retried { .. }));
    assert!(matches!(outcomes[1], DrainOutcome::Retried { .. }));
    assert_eq!(outcomes[2], DrainOutcome::Completed);
    // The delayed job: not due after a few seconds of travel, due after an hour.
    assert!(worker.drain("default").await.expect("drain").ran.is_empty());
    store
        .time_travel(Duration::from_secs(3600))
        .await
        .expect("travel");
    let drained = worker.drain("default").await.expect("drain");
    assert_eq!(drained.of_kind("welcome").count(), 1);
}

#[tokio::test]
async fn a_daily_schedule_fires_once_a_day_as_days_pass_by_time_travel() {
    let store = testing::sqlite().await;
    // A scheduler that counts every tick as on time, however far the test
    // travels: the scheduler "ran" all along.
    let config = SchedulerConfig {
        grace: Duration::MAX,
        ..SchedulerConfig::default()
    };
    let mut scheduler = Scheduler::new(store.store()).config(config).job(
        ScheduleDef::at("daily-welcome", "0 9 * * *").misfire(Misfire::Skip),
        &Welcome {
            to: "team@example.com".into(),
        },
    );
    scheduler.declare().await.expect("declare");
    scheduler.step_once().await.expect("arm");
    let worker = worker(&store);
    for day in 1..=3 {
        store
            .time_travel(Duration::from_secs(24 * 3600))
            .await
            .expect("travel");
        let step = scheduler.step_once().await.expect("step");
        assert_eq!(step.fired, 1, "day {day}: one tick");
        let drained = worker.drain("default").await.expect("drain");
        assert_eq!(drained.of_kind("welcome").count(), 1, "day {day}");
    }
    assert!(
        scheduler.step_once().await.expect("step").fired == 0,
        "nothing more today"
    );
}

#[tokio::test]
async fn a_host_starts_and_stops_in_one_call() {
    let store = testing::sqlite().await;
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker(&store)).expect("service");
    let (services, exit) =
        testing::with_host(builder, async |handle| handle.status().services.len())
            .await
            .expect("builds");
    assert_eq!((services, exit), (1, ExitStatus::Clean));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_postgres_schema_works_and_is_dropped_afterwards() {
    let url;
    {
        let store = testing::postgres().await;
        url = format!("{}?schema={}", testing::postgres_url(), store.schema());
        Client::new(store.store())
            .enqueue(Welcome {
                to: "pg@example.com".into(),
            })
            .await
            .expect("enqueue");
        assert_enqueued::<Welcome, _>(&**store, |e| e.job.to == "pg@example.com").await;
    }
    let again = steward::postgres::PostgresStore::connect(&url, Default::default())
        .await
        .expect("connect");
    let err = again.counts().await.expect_err("the schema is gone");
    assert!(
        matches!(err, steward::store::StoreError::NotMigrated { .. }),
        "{err}"
    );
}
