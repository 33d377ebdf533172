//! Waking workers across processes with `LISTEN/NOTIFY`, against the real
//! server: every "process" is a separate `PostgresStore::connect` (its own
//! pools, its own in-memory signal), so only PostgreSQL can carry the
//! wake-up from one to the other.

mod common;

use std::time::{Duration, Instant};

use common::TestSchema;
use sqlx::{Connection as _, PgConnection};
use steward_core::store::{NewJob, Store};
use steward_store_postgres::{PostgresStore, enqueue_in};

/// What a waiter asks for: far longer than any wake-up should take.
const LONG_WAIT: Duration = Duration::from_secs(30);

/// "Promptly": a generous bound that tells a notified wake-up from a wait
/// that ran to `LONG_WAIT` (not a speed check).
const PROMPT: Duration = Duration::from_secs(5);

/// How long the tests wait for the listener to show up or go away.
const SETTLE: Duration = Duration::from_secs(15);

async fn migrated(schema: &TestSchema) -> PostgresStore {
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    store
}

fn channel(schema: &TestSchema) -> String {
    format!("{}_jobs", schema.name)
}

/// The backends listening on this schema's channel (the listener's last
/// statement is its `LISTEN`, and it carries its own application name).
async fn listener_pids(conn: &mut PgConnection, schema: &TestSchema) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE application_name = 'steward-listener' AND query ILIKE 'LISTEN%'
             AND position($1 IN query) > 0
         ORDER BY pid",
    )
    .bind(format!("\"{}\"", channel(schema)))
    .fetch_all(&mut *conn)
    .await
    .expect("reading pg_stat_activity")
}

/// Waits until the listeners on `schema`'s channel are not `old` and
/// number `n`; returns them.
async fn await_listeners(
    conn: &mut PgConnection,
    schema: &TestSchema,
    n: usize,
    old: &[i32],
) -> Vec<i32> {
    let started = Instant::now();
    loop {
        let pids = listener_pids(conn, schema).await;
        if pids.len() == n && pids.iter().all(|p| !old.contains(p)) {
            return pids;
        }
        assert!(
            started.elapsed() < SETTLE,
            "expected {n} listener(s) on {} other than {old:?}, found {pids:?}",
            channel(schema)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets `store`'s waits end only by `max_wait` from now on: waits until a
/// short wait runs to its end (the wake-up of the listener's connection,
/// and its permit, are used up).
async fn drain(store: &PostgresStore) {
    let short = Duration::from_millis(200);
    let started = Instant::now();
    loop {
        let t = Instant::now();
        store.wait_for_work(short).await;
        if t.elapsed() >= short {
            return;
        }
        assert!(started.elapsed() < SETTLE, "the store kept waking up");
    }
}

/// Starts `store`'s listener and waits until it listens and is quiet.
async fn listening(store: &PostgresStore, schema: &TestSchema, conn: &mut PgConnection) -> i32 {
    store.wait_for_work(Duration::from_millis(1)).await;
    let pids = await_listeners(conn, schema, 1, &[]).await;
    drain(store).await;
    pids[0]
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
    let waiter = tokio::spawn({
        let worker = worker.clone();
        async move {
            worker.wait_for_work(LONG_WAIT).await;
            Instant::now()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tx = caller.begin().await.expect("begin");
    enqueue_in(&mut tx, &other, vec![NewJob::new("k", "{}")])
        .await
        .expect("enqueue_in");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter woke before the caller committed"
    );
    let committed = Instant::now();
    tx.commit().await.expect("commit");
    let woke = tokio::time::timeout(LONG_WAIT * 2, waiter)
        .await
        .expect("the waiter ends by its max_wait")
        .expect("waiter task");
    let after = woke.duration_since(committed);
    assert!(
        after < PROMPT,
        "the caller's commit should wake the waiter at once, took {after:?}"
    );
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
