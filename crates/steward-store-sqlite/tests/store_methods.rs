//! What only the SQLite store does, against a real file: pruning a large
//! table in steps, the wake-up a commit leaves for a worker about to wait,
//! and what `close` does to later calls. Every rule of
//! docs/store-contract.md is checked, for every store, by the contract suite
//! in steward-store-tests (`tests/contract.rs` runs it here).

mod common;

use std::time::Duration;

use common::{claim, open};
use steward_core::store::{Finish, FinishOutcome, NewJob, Store, StoreError};

/// Lets the clock pass the jobs a test just finished, so a prune with an
/// age of zero (a strict cutoff at now) sees them as older.
async fn let_time_pass() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn prune_of_many_rows_runs_in_steps_and_counts_them_all() {
    let t = open().await;
    let n = 12_345;
    t.store
        .enqueue((0..n).map(|_| NewJob::new("k", "{}")).collect())
        .await
        .unwrap();
    loop {
        let jobs = claim(&t.store, "default", 1000).await;
        if jobs.is_empty() {
            break;
        }
        let batch = jobs
            .iter()
            .map(|j| Finish {
                lease: j.lease,
                outcome: FinishOutcome::Completed,
            })
            .collect();
        t.store.finish(batch).await.unwrap();
    }
    let_time_pass().await;
    assert_eq!(
        t.store.prune(Duration::ZERO, Duration::ZERO).await.unwrap(),
        n
    );
    assert_eq!(t.store.counts().await.unwrap().total(), 0);
}

#[tokio::test]
async fn a_wake_up_just_before_waiting_is_not_missed() {
    let t = open().await;
    // The worker claimed (nothing), then an enqueue committed, then it waits:
    // the wake-up left for it returns the wait at once.
    t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        t.store.wait_for_work(Duration::from_secs(30)),
    )
    .await
    .expect("the stored wake-up returns the wait");
}

#[tokio::test]
async fn operations_after_close_fail_as_unavailable() {
    let t = open().await;
    t.store.close().await;
    t.store.close().await; // idempotent
    let err = t
        .store
        .enqueue(vec![NewJob::new("a", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
}
