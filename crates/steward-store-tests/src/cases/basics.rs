//! Handles, migration and the trivial edges of every batch method.

use std::time::Duration;

use steward_core::store::{ClaimRequest, NewJob, Store};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, WORKER, counts, enqueue_one, fresh_queue, job_in, prune, record, transient,
};

/// `name()` is a short word fit for logs and benchmark tables.
pub async fn store_name_is_a_short_lowercase_word<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let name = f.store.name();
    assert!(
        !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
        "name() should be a short lowercase word like `sqlite`, got {name:?}"
    );
}

/// `migrate` is harmless on an up-to-date database, and two handles on one
/// database see the same jobs, with ids increasing in insertion order
/// whichever handle inserted them.
pub async fn migrate_twice_and_a_second_handle_see_one_database<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let other = f.another_handle(h).await;
    let queue = fresh_queue("shared");

    f.store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("a second migrate on the same handle failed: {e}"));
    let first = enqueue_one(&*f.store, job_in(&queue)).await;
    other
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate again on the second handle failed: {e}"));
    let second = enqueue_one(&*other, job_in(&queue)).await;

    assert!(
        second > first,
        "ids must increase in insertion order across handles: {first} then {second}"
    );
    assert_eq!(record(&*other, first).await.id, first);
    assert_eq!(record(&*f.store, second).await.id, second);
    assert_eq!(counts(&*f.store).await.available, 2);
    assert_eq!(counts(&*other).await.available, 2);
}

/// Empty batches are answered with empty results, and calls that find
/// nothing to do change nothing.
pub async fn empty_batches_return_empty_results<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let id = enqueue_one(s, NewJob::new("contract", "{}")).await;

    let enqueued = transient(|| s.enqueue(Vec::new()))
        .await
        .expect("enqueue of nothing");
    assert!(
        enqueued.is_empty(),
        "enqueue(vec![]) should return no results"
    );
    let request = ClaimRequest {
        worker: WORKER.to_string(),
        queues: Vec::new(),
        lease: LONG_LEASE,
        max_suspects: u32::MAX,
        kinds: None,
    };
    let claimed = transient(|| s.claim(request.clone()))
        .await
        .expect("claim of no queues");
    assert!(
        claimed.is_empty(),
        "a claim naming no queue should return nothing"
    );
    let beats = transient(|| s.heartbeat(Vec::new(), LONG_LEASE))
        .await
        .expect("heartbeat of nothing");
    assert!(
        beats.is_empty(),
        "heartbeat(vec![]) should return no results"
    );
    let finished = transient(|| s.finish(Vec::new()))
        .await
        .expect("finish of nothing");
    assert!(
        finished.is_empty(),
        "finish(vec![]) should return no results"
    );
    let released = transient(|| s.release(Vec::new()))
        .await
        .expect("release of nothing");
    assert_eq!(released, 0, "release(vec![]) should release nothing");
    let ten_years = Duration::from_secs(3650 * 24 * 3600);
    assert_eq!(
        prune(s, ten_years, ten_years).await,
        0,
        "nothing is old enough to prune"
    );

    let c = counts(s).await;
    assert_eq!(
        (c.available, c.total()),
        (1, 1),
        "the one job should be untouched"
    );
    assert_eq!(record(s, id).await.attempt, 0);
}

/// `close` lets go of the store: later calls fail with `Unavailable` (a
/// caller sees a closed store as one it cannot reach, never a hang or a
/// panic), and closing again is harmless. Generic code can shut down any
/// store (issue 12).
pub async fn a_closed_store_refuses_calls_and_closes_twice<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let queue = fresh_queue("closed");
    enqueue_one(&*f.store, job_in(&queue)).await;
    f.store.close().await;
    let refused = f.store.enqueue(vec![job_in(&queue)]).await;
    assert!(
        matches!(
            refused,
            Err(steward_core::store::StoreError::Unavailable { .. })
        ),
        "enqueue on a closed store: {refused:?}"
    );
    let refused = f.store.counts().await;
    assert!(
        matches!(
            refused,
            Err(steward_core::store::StoreError::Unavailable { .. })
        ),
        "counts on a closed store: {refused:?}"
    );
    f.store.close().await;
}
