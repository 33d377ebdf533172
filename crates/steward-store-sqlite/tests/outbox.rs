//! Enqueue and completion inside the caller's own transaction.

mod common;

use std::time::Duration;

use steward_core::store::{
    Finish, FinishOutcome, JobState, Lease, LeaseToken, NewJob, Store, StoreError, UniqueScope,
};
use steward_store_sqlite::{SqliteStore, complete_in, enqueue_in};

async fn orders_table(store: &SqliteStore) {
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, shipped INTEGER NOT NULL DEFAULT 0)")
        .execute(store.pool())
        .await
        .unwrap();
}

async fn orders(store: &SqliteStore) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_enqueue_commits_with_the_callers_business_row() {
    let t = common::open().await;
    orders_table(&t.store).await;
    let mut tx = t.store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids = enqueue_in(&mut tx, vec![NewJob::new("ship", r#"{"order":1}"#)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    t.store.notify_enqueued();

    assert_eq!(orders(&t.store).await, 1);
    let job = t
        .store
        .job(ids[0].id)
        .await
        .unwrap()
        .expect("job committed");
    assert_eq!(job.state, JobState::Available);
    // The store's writer sees it too.
    let claimed = common::claim(&t.store, "default", 10).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.id, ids[0].id);
}

#[tokio::test]
async fn a_rolled_back_enqueue_vanishes_with_its_unique_key() {
    let t = common::open().await;
    orders_table(&t.store).await;
    let mut tx = t.store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids = enqueue_in(
        &mut tx,
        vec![NewJob::new("ship", "{}").unique("order:1", UniqueScope::Queued)],
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(orders(&t.store).await, 0);
    assert!(t.store.job(ids[0].id).await.unwrap().is_none());
    assert_eq!(t.store.counts().await.unwrap().total(), 0);
    let again = t
        .store
        .enqueue(vec![
            NewJob::new("ship", "{}").unique("order:1", UniqueScope::Queued),
        ])
        .await
        .unwrap();
    assert!(!again[0].duplicate, "the rolled-back key was never held");
}

#[tokio::test]
async fn a_refused_enqueue_leaves_the_callers_transaction_usable() {
    let t = common::open().await;
    orders_table(&t.store).await;
    let mut tx = t.store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = enqueue_in(&mut tx, vec![NewJob::new("ship", "{not json")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    sqlx::query("INSERT INTO orders (id) VALUES (2)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(orders(&t.store).await, 2);
    assert_eq!(t.store.counts().await.unwrap().total(), 0);
}

#[tokio::test]
async fn complete_in_commits_with_the_callers_writes_and_is_fenced() {
    let t = common::open().await;
    orders_table(&t.store).await;
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(t.store.pool())
        .await
        .unwrap();
    t.store
        .enqueue(vec![NewJob::new("ship", "{}")])
        .await
        .unwrap();
    let job = common::claim(&t.store, "default", 1).await.remove(0);

    // A stale lease is refused, and the caller's transaction goes on.
    let stale = Lease {
        id: job.lease.id,
        token: LeaseToken(job.lease.token.0 ^ 1),
    };
    let mut tx = t.store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    let err = complete_in(&mut tx, stale).await.unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseLost { id } if id == job.lease.id),
        "{err}"
    );

    // Rolled back: the job is still running.
    complete_in(&mut tx, job.lease).await.unwrap();
    tx.rollback().await.unwrap();
    let record = t.store.job(job.lease.id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Running);

    // Committed: the business write and the completion together.
    let mut tx = t.store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("UPDATE orders SET shipped = 1 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    complete_in(&mut tx, job.lease).await.unwrap();
    tx.commit().await.unwrap();
    let record = t.store.job(job.lease.id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Completed);
    let shipped: i64 = sqlx::query_scalar("SELECT shipped FROM orders WHERE id = 1")
        .fetch_one(t.store.pool())
        .await
        .unwrap();
    assert_eq!(shipped, 1);

    // Completed once: the same lease cannot complete it again, in or out of
    // a caller's transaction.
    let mut conn = t.store.pool().acquire().await.unwrap();
    assert!(matches!(
        complete_in(&mut conn, job.lease).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let again = t
        .store
        .finish(vec![Finish {
            lease: job.lease,
            outcome: FinishOutcome::Completed,
        }])
        .await
        .unwrap();
    assert_eq!(again, [false]);
}

#[tokio::test]
async fn notify_enqueued_wakes_a_waiting_worker() {
    let t = common::open().await;
    t.store.wait_for_work(Duration::from_millis(1)).await;
    let store = t.store.clone();
    let waiter = tokio::spawn(async move { store.wait_for_work(Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut conn = t.store.pool().acquire().await.unwrap();
    enqueue_in(&mut conn, vec![NewJob::new("a", "{}")])
        .await
        .unwrap();
    t.store.notify_enqueued();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken by notify_enqueued")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_futures_can_be_spawned() {
    let t = common::open().await;
    let pool = t.store.pool().clone();
    let ids = tokio::spawn(async move {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids = enqueue_in(&mut tx, vec![NewJob::new("a", "{}")]).await?;
        tx.commit().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(ids)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ids.len(), 1);
}
