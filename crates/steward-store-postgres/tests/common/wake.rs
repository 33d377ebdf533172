//! Watching a store's wake-ups: its listener backend, quiet waits, and a
//! waiter woken by a caller's commit.

use std::time::{Duration, Instant};

use sqlx::{PgConnection, Postgres, Transaction};
use steward_core::store::Store;
use steward_store_postgres::PostgresStore;
use tokio::task::JoinHandle;

use super::TestSchema;

/// What a waiter asks for: far longer than any wake-up should take.
pub const LONG_WAIT: Duration = Duration::from_secs(30);

/// "Promptly": tells a notified wake-up from a wait that ran to its end.
pub const PROMPT: Duration = Duration::from_secs(5);

/// How long the tests wait for the listener to show up or go away.
pub const SETTLE: Duration = Duration::from_secs(15);

/// The schema's `NOTIFY` channel.
pub fn channel(schema: &TestSchema) -> String {
    format!("{}_jobs", schema.name)
}

/// The backends listening on this schema's channel (the listener's last
/// statement is its `LISTEN`, and it carries its own application name).
pub async fn listener_pids(conn: &mut PgConnection, schema: &TestSchema) -> Vec<i32> {
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
pub async fn await_listeners(
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
pub async fn drain(store: &PostgresStore) {
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

/// Starts `store`'s listener and waits until it listens and is quiet;
/// returns the listener's backend.
pub async fn listening(store: &PostgresStore, schema: &TestSchema, conn: &mut PgConnection) -> i32 {
    store.wait_for_work(Duration::from_millis(1)).await;
    let pids = await_listeners(conn, schema, 1, &[]).await;
    drain(store).await;
    pids[0]
}

/// A task waiting for work on `store` (up to [`LONG_WAIT`]), returning when
/// its wait ended.
pub fn waiter(store: &PostgresStore) -> JoinHandle<Instant> {
    let store = store.clone();
    tokio::spawn(async move {
        store.wait_for_work(LONG_WAIT).await;
        Instant::now()
    })
}

/// Checks that `waiter` has not woken while `tx` is open (after `quiet`),
/// commits `tx`, and checks that the commit wakes it promptly; `what`
/// names the case in the failure.
pub async fn assert_woken_by_commit(
    waiter: JoinHandle<Instant>,
    tx: Transaction<'_, Postgres>,
    quiet: Duration,
    what: &str,
) {
    tokio::time::sleep(quiet).await;
    assert!(
        !waiter.is_finished(),
        "{what}: the waiter woke before the caller committed"
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
        "{what}: the caller's commit should wake the waiter at once, took {after:?}"
    );
}
