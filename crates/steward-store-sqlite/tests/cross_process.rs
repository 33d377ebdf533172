//! Wake-ups across processes: a job enqueued by another process on the same
//! file wakes a worker idle in `wait_for_work` long before its poll.
//!
//! The other process is this test binary run again (`child_enqueues`), so
//! it writes through the real store, as the CLI or a web server would.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use steward_core::store::{NewJob, Store};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

/// Set in the child's environment: the database it enqueues into.
const CHILD_DB: &str = "STEWARD_TEST_CHILD_DB";

/// The poll interval the waits ask for: far longer than the test's bound,
/// so only a wake-up can pass it.
const POLL: Duration = Duration::from_secs(5);

/// Not a test of its own: the body of the child process. Without
/// [`CHILD_DB`] in its environment it does nothing.
#[tokio::test]
async fn child_enqueues() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("child opens the store");
    store
        .enqueue(vec![NewJob::new("cross", "{}").queue("cross")])
        .await
        .expect("child enqueues");
    store.close().await;
}

/// Runs [`child_enqueues`] in a new process on `path`.
fn spawn_child(path: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "child_enqueues",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, path)
        .spawn()
        .expect("spawn the child process")
}

/// Waits (at most `POLL` per wait) until a job can be claimed from queue
/// `cross`; returns how long that took.
async fn wait_and_claim(store: &SqliteStore) -> Duration {
    let started = Instant::now();
    loop {
        store.wait_for_work(POLL).await;
        if !common::claim(store, "cross", 1).await.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < 4 * POLL,
            "no job from the other process after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_by_another_process_wakes_an_idle_worker() {
    let t = common::open().await;
    // The first waits may end at once (wake-ups this store left for
    // itself); spurious wake-ups are allowed, so use them up.
    for _ in 0..3 {
        t.store.wait_for_work(Duration::from_millis(20)).await;
    }
    for round in 0..2 {
        let mut child = spawn_child(&t.path());
        let took = wait_and_claim(&t.store).await;
        let status = child.wait().expect("the child ran");
        assert!(status.success(), "the child failed: {status}");
        // The child's start-up (a process, a runtime, opening the file) is
        // inside this bound; a poll would take `POLL`.
        assert!(
            took < POLL / 2,
            "round {round}: the worker found the other process's job after {took:?}, \
             as if by polling ({POLL:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_not_woken_by_its_own_empty_claims() {
    let t = common::open().await;
    for _ in 0..3 {
        t.store.wait_for_work(Duration::from_millis(20)).await;
    }
    // An idle worker's loop: claim (nothing), wait. If the empty claim wrote
    // to the WAL, the watch would wake the wait at once, forever.
    for _ in 0..3 {
        assert!(common::claim(&t.store, "default", 10).await.is_empty());
        let started = Instant::now();
        t.store.wait_for_work(Duration::from_millis(300)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "an idle worker woke after {waited:?} with nothing written"
        );
    }
}
