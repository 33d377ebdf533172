//! The worker on a database it cannot write for a while: it reports the
//! error, backs off, stays alive, and carries on once the lock is gone.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor, SqliteConnection};
use steward_core::jobs::{Client, Job, JobContext, Worker, WorkerConfig};
use steward_core::store::{JobState, Store};
use steward_core::{BoxError, ExitStatus, Host};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

#[derive(Serialize, Deserialize)]
struct Hello {}

impl Job for Hello {
    const KIND: &'static str = "hello";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_backs_off_while_the_database_is_locked_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(200),
        ..SqliteOptions::default()
    };
    let store = Arc::new(
        SqliteStore::open(path.to_str().unwrap(), options)
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    let id = Client::new(store.clone())
        .enqueue(Hello {})
        .await
        .unwrap()
        .id;

    // Another process takes the write lock and holds it.
    let mut locker = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();

    let worker = Worker::new(store.clone())
        .register::<Hello>()
        .config(WorkerConfig {
            poll_interval: Duration::from_millis(100),
            heartbeat_every: Duration::from_millis(200),
            ..WorkerConfig::default()
        });
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let running = tokio::spawn(host.run());

    // While locked: the worker is alive (running, not faulted) but not ready.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = handle.status();
        let worker = status.service("worker").unwrap();
        assert!(!worker.state.is_faulted(), "the worker died: {worker:?}");
        if worker.state.is_running() && !worker.ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw the worker back off: {worker:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        handle
            .status()
            .service("worker")
            .unwrap()
            .state
            .is_running()
    );

    locker.execute("ROLLBACK").await.unwrap();
    drop(locker);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.job(id).await.unwrap().unwrap().state != JobState::Completed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never ran after the lock went away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(handle.status().ready, "ready again once the store answers");
    handle.shutdown();
    assert_eq!(running.await.unwrap(), ExitStatus::Clean);
}
