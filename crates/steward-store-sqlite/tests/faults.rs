//! A read-only file, a locked file, a failing operation: the store answers
//! with typed errors and its writer keeps serving.

mod common;

use std::time::{Duration, Instant};

use sqlx::{Connection as _, SqliteConnection};
use steward_core::store::{NewJob, Store, StoreError};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::test]
async fn a_read_only_database_refuses_writes_and_keeps_serving() {
    let t = common::open().await;
    let id = t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap()[0].id;
    // Keep the first store open (as another process would), so the WAL and
    // its index stay in place for the read-only opener.
    let url = format!("sqlite://{}?mode=ro", t.path());
    let ro = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();

    for _ in 0..2 {
        let err = ro.enqueue(vec![NewJob::new("b", "{}")]).await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
        assert!(!err.is_transient());
        assert!(err.to_string().contains("jobs.db"), "names the file: {err}");
    }
    // The writer task survived and answers other operations; reads work.
    assert!(matches!(
        ro.cancel(id).await,
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(ro.job(id).await.unwrap().is_some());
    assert_eq!(ro.counts().await.unwrap().available, 1);
    ro.close().await;
}

#[tokio::test]
async fn a_locked_database_gives_busy_then_works_again() {
    let t = common::open_with(SqliteOptions {
        busy_timeout: Duration::from_millis(200),
        ..SqliteOptions::default()
    })
    .await;
    let id = t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap()[0].id;

    // Another connection (another process, say) holds the write lock.
    let mut locker = SqliteConnection::connect(&format!("sqlite://{}", t.path()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();

    let started = Instant::now();
    let err = t
        .store
        .enqueue(vec![NewJob::new("b", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Busy { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited for busy_timeout"
    );
    // Concurrent callers of a batch that hit the lock all get Busy.
    let (a, b) = tokio::join!(
        t.store.retry(id),
        t.store.enqueue(vec![NewJob::new("c", "{}")])
    );
    assert!(matches!(a, Err(StoreError::Busy { .. })));
    assert!(matches!(b, Err(StoreError::Busy { .. })));
    // Readers are not blocked by a writer in WAL mode.
    assert!(t.store.job(id).await.unwrap().is_some());

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let ids = t.store.enqueue(vec![NewJob::new("d", "{}")]).await.unwrap();
    assert!(!ids[0].duplicate);
    assert_eq!(t.store.counts().await.unwrap().available, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_operation_does_not_fail_the_others_of_its_batch() {
    let t = common::open().await;
    // A trigger makes one kind of job fail inside SQLite, after validation.
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON steward_jobs WHEN NEW.kind = 'poison'
         BEGIN SELECT RAISE(ABORT, 'poisoned job'); END",
    )
    .execute(t.store.pool())
    .await
    .unwrap();

    // Hold the write lock so that every op below queues up behind the
    // first one and they all land in one batch.
    let mut locker = SqliteConnection::connect(&format!("sqlite://{}", t.path()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let first = {
        let store = t.store.clone();
        tokio::spawn(async move { store.enqueue(vec![NewJob::new("first", "{}")]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = t.store.clone();
        let kind = if i == 25 { "poison" } else { "ok" };
        tasks.push(tokio::spawn(async move {
            (kind, store.enqueue(vec![NewJob::new(kind, "{}")]).await)
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    first.await.unwrap().unwrap();
    let mut ok = 0;
    for task in tasks {
        let (kind, result) = task.await.unwrap();
        match (kind, result) {
            ("poison", Err(StoreError::Database { source })) => {
                assert!(source.to_string().contains("poisoned job"), "{source}");
            }
            ("ok", Ok(ids)) => {
                assert!(!ids[0].duplicate);
                ok += 1;
            }
            (kind, other) => panic!("{kind}: unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 49);
    assert_eq!(t.store.counts().await.unwrap().available, 50);
    // And the writer goes on.
    t.store
        .enqueue(vec![NewJob::new("after", "{}")])
        .await
        .unwrap();
}
