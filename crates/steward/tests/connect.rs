//! `steward::connect(url)`: the store a URL names works with `Client`,
//! `Worker` and `Maintenance`, and code generic over `Store` can close it
//! (issue 12, items 1 and 2). Real SQLite files and the PostgreSQL at
//! 127.0.0.1:5432 (`STEWARD_TEST_DATABASE_URL` overrides it): a test fails,
//! never skips, when PostgreSQL is missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::Ping;
use steward::jobs::{Client, Maintenance, Worker};
use steward::store::{Store, StoreError};
use steward::{AnyStore, Host};

/// Enqueues three jobs through `store`, runs a host with a worker and
/// maintenance on it until they have completed, then closes the store
/// through the trait alone.
async fn runs_jobs_and_closes(store: AnyStore) {
    store.migrate().await.expect("migrate");
    let store = Arc::new(store);
    let client = Client::new(store.clone());
    for _ in 0..3 {
        client.enqueue(Ping).await.expect("enqueue");
    }
    let mut host = Host::builder();
    host.handle_signals(false);
    host.service("maintenance", Maintenance::new(store.clone()))
        .expect("maintenance");
    host.service(
        "worker",
        Worker::new(store.clone())
            .register::<Ping>()
            .queue("default", 4),
    )
    .expect("worker");
    let host = host.build().expect("build");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.counts().await.expect("counts").completed < 3 {
        assert!(Instant::now() < deadline, "the jobs did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown();
    running.await.expect("the host");
    close(&*store).await;
    assert!(
        matches!(store.counts().await, Err(StoreError::Unavailable { .. })),
        "a closed store answered"
    );
}

/// Closes any store: what generic code can do since `close` is on the trait.
async fn close<S: Store>(store: &S) {
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_url_opens_a_store_that_runs_jobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let store = steward::connect(&url).await.expect("connect");
    assert_eq!(store.name(), "sqlite");
    runs_jobs_and_closes(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_url_opens_a_store_in_its_schema_that_runs_jobs() {
    let base = std::env::var("STEWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("steward_connect_{:016x}", rand::random::<u64>());
    let store = steward::connect(&format!("{base}?schema={schema}"))
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {base}: {e}"));
    assert_eq!(store.name(), "postgres");
    runs_jobs_and_closes(store).await;
    // The jobs lived in the URL's schema: it exists, and is dropped.
    let status = std::process::Command::new("psql")
        .args([&base, "-qc", &format!("DROP SCHEMA \"{schema}\" CASCADE")])
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "could not drop {schema}: the jobs were not in the URL's schema"
    );
}

#[tokio::test]
async fn urls_of_other_kinds_and_unknown_parameters_are_refused_by_name() {
    for (url, needle) in [
        ("mysql://u@h/db", "not a store URL"),
        ("jobs.db", "not a store URL"),
        ("postgres://u@127.0.0.1:1/db?schemaa=x", "schemaa"),
        ("sqlite://jobs.db?mdoe=ro", "mdoe"),
    ] {
        let err = steward::connect(url).await.expect_err(url);
        assert!(
            matches!(&err, StoreError::Invalid { .. }) && err.to_string().contains(needle),
            "{url}: {err}"
        );
    }
}
