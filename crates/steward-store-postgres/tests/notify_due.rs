//! Due times across processes: a delayed enqueue, a retry's back-off or a
//! snooze through one store is announced with its due time, so a worker on
//! another store (another process) wakes when the job comes due, not at its
//! poll. Each "process" is a separate `PostgresStore::connect`.

mod common;

use std::time::{Duration, Instant};

use common::TestSchema;
use common::wake::{LONG_WAIT, listening};
use steward_core::store::{
    AttemptError, ClaimRequest, ErrorKind, Finish, FinishOutcome, NewJob, QueueClaim, Store,
};
use steward_store_postgres::PostgresStore;

/// When the jobs come due: short, but far longer than a round trip.
const DUE_IN: Duration = Duration::from_secs(1);

fn request(queue: &str) -> ClaimRequest {
    ClaimRequest {
        worker: "due-test".into(),
        queues: vec![QueueClaim {
            queue: queue.into(),
            limit: 1,
        }],
        lease: Duration::from_secs(60),
        max_suspects: u32::MAX,
        kinds: None,
    }
}

/// A migrated store on `schema`, listening for wake-ups (as a worker's
/// first wait makes it).
async fn listening_worker(schema: &TestSchema) -> PostgresStore {
    let mut conn = schema.raw().await;
    let worker = schema.connect().await;
    worker.migrate().await.expect("migrate");
    listening(&worker, schema, &mut conn).await;
    worker
}

/// `worker` waits and claims, as a worker does, until it gets a job from
/// `queue`; fails if that took anywhere near [`LONG_WAIT`].
async fn assert_claimed_when_due(worker: &PostgresStore, queue: &str, what: &str) {
    let started = Instant::now();
    loop {
        worker.wait_for_work(LONG_WAIT).await;
        let got = worker.claim(request(queue)).await.expect("claim");
        if !got.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < LONG_WAIT / 2,
            "{what} through another store, due in {DUE_IN:?}, was not claimable after {:?}",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    assert!(
        took < LONG_WAIT / 2,
        "{what} through another store, due in {DUE_IN:?}, was claimed after {took:?}: \
         the worker waited for its poll ({LONG_WAIT:?})"
    );
}

/// Runs one attempt of a job in `queue` on `other` and finishes it with
/// `outcome`.
async fn requeue(other: &PostgresStore, queue: &str, outcome: FinishOutcome) {
    other
        .enqueue(vec![NewJob::new("k", "{}").queue(queue)])
        .await
        .expect("enqueue");
    let job = other
        .claim(request(queue))
        .await
        .expect("claim")
        .pop()
        .expect("the job just enqueued");
    let applied = other
        .finish(vec![Finish {
            lease: job.lease,
            outcome,
        }])
        .await
        .expect("finish");
    assert_eq!(applied, [true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_work_from_another_store_wakes_a_worker_when_it_comes_due() {
    let schema = TestSchema::new().await;
    let worker = listening_worker(&schema).await;
    let other = schema.connect().await;

    other
        .enqueue(vec![NewJob::new("k", "{}").queue("delayed").delay(DUE_IN)])
        .await
        .expect("enqueue");
    assert_claimed_when_due(&worker, "delayed", "a delayed job").await;

    // Enqueued at once; the retry is what is announced with its due time.
    let failed = FinishOutcome::Failed {
        error: AttemptError {
            attempt: 1,
            at: chrono::Utc::now(),
            kind: ErrorKind::Error,
            message: "again".into(),
        },
        retry_in: Some(DUE_IN),
    };
    requeue(&other, "retried", failed).await;
    assert_claimed_when_due(&worker, "retried", "a retry").await;

    requeue(&other, "snoozed", FinishOutcome::Snoozed { delay: DUE_IN }).await;
    assert_claimed_when_due(&worker, "snoozed", "a snoozed job").await;

    other.close().await;
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_psql_enqueue_wakes_a_worker_when_it_comes_due() {
    let schema = TestSchema::new().await;
    let worker = listening_worker(&schema).await;

    for (queue, when) in [
        ("psql-delay", "delay => interval '1 second'"),
        ("psql-run-at", "run_at => now() + interval '1 second'"),
    ] {
        let out = schema
            .psql(&format!(
                "SELECT \"{}\".enqueue('k', queue => '{queue}', {when})",
                schema.name
            ))
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_claimed_when_due(&worker, queue, &format!("a psql enqueue with {when}")).await;
    }
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_enqueue_in_the_callers_transaction_wakes_a_worker_when_it_comes_due() {
    let schema = TestSchema::new().await;
    let worker = listening_worker(&schema).await;
    let other = schema.connect().await;

    let mut tx = other.pool().begin().await.expect("begin");
    steward_store_postgres::enqueue_in(
        &mut tx,
        &other,
        vec![NewJob::new("k", "{}").queue("outbox").delay(DUE_IN)],
    )
    .await
    .expect("enqueue_in");
    tx.commit().await.expect("commit");
    assert_claimed_when_due(&worker, "outbox", "a delayed enqueue_in").await;

    other.close().await;
    worker.close().await;
}
