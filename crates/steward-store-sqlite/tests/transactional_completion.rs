//! Transactional completion through the engine: a job's own write and its
//! completion commit together, so its effect happens exactly once.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use steward_core::jobs::{Client, Job, JobContext, JobOptions, RetryPolicy, Worker, WorkerConfig};
use steward_core::store::{JobState, Store};
use steward_core::{BoxError, Host};
use steward_store_sqlite::{SqliteOptions, SqliteStore, complete_in};

/// Credits an account and completes itself in the same transaction. On its
/// first attempt it fails after both writes, before the commit.
#[derive(Serialize, Deserialize)]
struct Credit {
    account: i64,
    fail_first: bool,
}

impl Job for Credit {
    const KIND: &'static str = "credit";
    fn options() -> JobOptions {
        JobOptions {
            retry: RetryPolicy::custom(|_| Duration::from_millis(50)),
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let pool = ctx.state::<SqlitePool>()?;
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO credits (account, job) VALUES (?, ?)")
            .bind(self.account)
            .bind(ctx.id().0)
            .execute(&mut *tx)
            .await?;
        complete_in(&mut tx, ctx.lease()).await?;
        if self.fail_first && ctx.attempt() == 1 {
            // Dropping the transaction rolls back the credit and the completion.
            return Err("crashed before commit".into());
        }
        tx.commit().await?;
        ctx.mark_completed();
        Ok(())
    }
}

async fn run_case(fail_first: bool) -> (i64, u32, JobState) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = Arc::new(
        SqliteStore::open(path.to_str().unwrap(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    sqlx::query("CREATE TABLE credits (account INTEGER NOT NULL, job INTEGER NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    let id = Client::new(store.clone())
        .enqueue(Credit {
            account: 7,
            fail_first,
        })
        .await
        .unwrap()
        .id;

    let worker = Worker::new(store.clone())
        .register::<Credit>()
        .config(WorkerConfig {
            heartbeat_every: Duration::from_millis(200),
            ..WorkerConfig::default()
        })
        .state(store.pool().clone());
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = store.job(id).await.unwrap().unwrap();
        if job.state == JobState::Completed {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Give a wrongly written second completion or rerun a chance to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.shutdown();
    assert!(running.await.unwrap().is_success());
    let credits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credits")
        .fetch_one(store.pool())
        .await
        .unwrap();
    (credits, job.attempt, job.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_write_and_completion_commit_together_exactly_once() {
    let (credits, attempt, state) = run_case(false).await;
    assert_eq!(state, JobState::Completed);
    assert_eq!(attempt, 1);
    assert_eq!(credits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_attempt_leaves_neither_its_write_nor_its_completion() {
    let (credits, attempt, state) = run_case(true).await;
    assert_eq!(state, JobState::Completed);
    assert_eq!(
        attempt, 2,
        "the first attempt's completion was rolled back with it"
    );
    assert_eq!(credits, 1, "the first attempt's credit was rolled back");
}
