//! Waking workers across processes with `LISTEN/NOTIFY`, against the real
//! server: every "process" is a separate `PostgresStore::connect` (its own
//! pools, its own in-memory signal), so only PostgreSQL can carry the
//! wake-up from one to the other.

mod common;

use std::time::{Duration, Instant};

use common::TestSchema;
use common::wake::{
    LONG_WAIT, PROMPT, assert_woken_by_commit, await_listeners, drain, listener_pids, listening,
    waiter,
};
use sqlx::Connection as _;
use steward_core::store::{NewJob, Store};
use steward_store_postgres::{PostgresStore, enqueue_in};

async fn migrated(schema: &TestSchema) -> PostgresStore {
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    store
}

/// Runs `act` while `store` waits up to `max_wait`; returns how long the
/// wait took.
async fn wait_while(
    store: &PostgresStore,
    max_wait: Duration,
    act: impl Future<Output = ()>,
) -> Duration {
    let started = Instant::now();
    let ((), ()) = tokio::join!(store.wait_for_work(max_wait), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        act.await;
    });
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_by_another_store_wakes_a_waiting_worker() {
    let schema = TestSchema::new().await;
    let mut conn = schema.raw().await;
    let worker = migrated(&schema).await;
    let other = schema.connect().await;
    listening(&worker, &schema, &mut conn).await;

    let waited = wait_while(&worker, LONG_WAIT, async {
        other
            .enqueue(vec![NewJob::new("k", "{}")])
            .await
            .expect("enqueue");
    })
    .await;
    assert!(
        waited < PROMPT,
        "an enqueue through another store should wake the waiter at once, took {waited:?}"
    );
    other.close().await;
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_in_a_callers_transaction_wakes_at_commit_not_before() {
    let schema = TestSchema::new().await;
    let mut conn = schema.raw().await;
    let worker = migrated(&schema).await;
    let other = schema.connect().await;
    listening(&worker, &schema, &mut conn).await;

    // Rolled back: nothing is announced.
    let mut caller = schema.raw().await;
    let waited = wait_while(&worker, Duration::from_secs(2), async {
        let mut tx = caller.begin().await.expect("begin");
        enqueue_in(&mut tx, &other, vec![NewJob::new("k", "{}")])
            .await
            .expect("enqueue_in");
        tx.rollback().await.expect("rollback");
    })
    .await;
    assert!(
        waited >= Duration::from_millis(1_900),
        "a rolled-back enqueue woke the waiter after {waited:?}"
    );

    // Committed: announced at the commit, not at the insert.
    let waiting = waiter(&worker);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tx = caller.begin().await.expect("begin");
    enqueue_in(&mut tx, &other, vec![NewJob::new("k", "{}")])
        .await
        .expect("enqueue_in");
    assert_woken_by_commit(waiting, tx, Duration::from_secs(1), "one job").await;
    other.close().await;
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schemas_on_one_database_do_not_wake_each_other() {
    let first = TestSchema::new().await;
    let second = TestSchema::new().await;
    let mut conn = first.raw().await;
    let worker_1 = migrated(&first).await;
    let worker_2 = migrated(&second).await;
    let other_1 = first.connect().await;
    listening(&worker_1, &first, &mut conn).await;
    listening(&worker_2, &second, &mut conn).await;

    let short = Duration::from_secs(2);
    let started = Instant::now();
    let ((), (), ()) = tokio::join!(
        async {
            let t = Instant::now();
            worker_1.wait_for_work(LONG_WAIT).await;
            assert!(
                t.elapsed() < PROMPT,
                "the first schema's waiter should wake, took {:?}",
                t.elapsed()
            );
        },
        async {
            worker_2.wait_for_work(short).await;
        },
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            other_1
                .enqueue(vec![NewJob::new("k", "{}")])
                .await
                .expect("enqueue");
        }
    );
    let waited = started.elapsed();
    assert!(
        waited >= short - Duration::from_millis(100),
        "the second schema's waiter woke after {waited:?} for the first schema's enqueue"
    );
    for store in [other_1, worker_1, worker_2] {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_after_its_backend_is_terminated() {
    let schema = TestSchema::new().await;
    let mut conn = schema.raw().await;
    let worker = migrated(&schema).await;
    let other = schema.connect().await;
    let pid = listening(&worker, &schema, &mut conn).await;

    // Lost and back: the waiter is woken once it listens again, since
    // notifications sent meanwhile were lost.
    let waited = wait_while(&worker, LONG_WAIT, async {
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut conn)
            .await
            .expect("pg_terminate_backend");
        assert!(killed, "terminating the listener's backend {pid}");
    })
    .await;
    assert!(
        waited < PROMPT,
        "the reconnected listener should wake the waiter, took {waited:?}"
    );
    let new = await_listeners(&mut conn, &schema, 1, &[pid]).await;
    assert_ne!(new, vec![pid]);
    drain(&worker).await;

    let waited = wait_while(&worker, LONG_WAIT, async {
        other
            .enqueue(vec![NewJob::new("k", "{}")])
            .await
            .expect("enqueue");
    })
    .await;
    assert!(
        waited < PROMPT,
        "after the reconnect, another store's enqueue should still wake the waiter, \
         took {waited:?}"
    );
    other.close().await;
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_per_store_stopped_by_close_and_by_drop() {
    let schema = TestSchema::new().await;
    let mut conn = schema.raw().await;
    let store = migrated(&schema).await;
    listening(&store, &schema, &mut conn).await;

    // Many waiters, on clones too: still one listening connection.
    let clone = store.clone();
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let s = clone.clone();
        waiters.spawn(async move { s.wait_for_work(Duration::from_millis(500)).await });
    }
    while let Some(done) = waiters.join_next().await {
        done.expect("waiter");
    }
    assert_eq!(listener_pids(&mut conn, &schema).await.len(), 1);

    store.close().await;
    await_listeners(&mut conn, &schema, 0, &[]).await;
    // A wait after close polls; it does not start a listener again.
    clone.wait_for_work(Duration::from_millis(300)).await;
    assert!(listener_pids(&mut conn, &schema).await.is_empty());

    let dropped = migrated(&schema).await;
    listening(&dropped, &schema, &mut conn).await;
    drop(dropped);
    await_listeners(&mut conn, &schema, 0, &[]).await;
}
