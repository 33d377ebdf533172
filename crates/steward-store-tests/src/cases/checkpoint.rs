//! `checkpoint`: saved, fenced, and handed to the next attempt whatever
//! ended the last one.

use std::time::Duration;

use steward_core::store::{FinishOutcome, JobId, Lease, StoreError};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, SHORT_LEASE, assert_same_json, checkpoint, claim_one, failed, finish_ok,
    record, release, rescue_until, retry, running,
};

/// Saves `state` with a live lease; panics if refused.
async fn save<S: steward_core::store::Store>(store: &S, lease: Lease, state: &str) {
    checkpoint(store, lease, state)
        .await
        .unwrap_or_else(|e| panic!("checkpoint of job {} with its live lease: {e}", lease.id));
}

/// Asserts `refused` is `LeaseLost` for `id`.
fn assert_lease_lost(refused: Result<(), StoreError>, id: JobId, when: &str) {
    match refused {
        Err(StoreError::LeaseLost { id: lost }) => {
            assert_eq!(lost, id, "LeaseLost should name the job")
        }
        other => panic!("a checkpoint {when} should fail with LeaseLost, got {other:?}"),
    }
}

/// A checkpoint is stored (the latest one wins) and the next attempt gets it
/// in `ClaimedJob::checkpoint`.
pub async fn checkpoint_is_stored_and_returned_to_the_next_attempt<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    save(s, job.lease, r#"{"page":2}"#).await;
    let r = record(s, job.lease.id).await;
    assert_same_json(
        r.checkpoint.as_deref().expect("saved"),
        r#"{"page":2}"#,
        "checkpoint",
    );
    save(s, job.lease, r#"{"page":3,"cursor":"a1"}"#).await;
    finish_ok(s, job.lease, failed(1, "interrupted", Some(Duration::ZERO))).await;

    let next = claim_one(s, &job.queue, job.lease.id, LONG_LEASE).await;
    assert_same_json(
        next.checkpoint
            .as_deref()
            .expect("the next attempt gets the checkpoint"),
        r#"{"page":3,"cursor":"a1"}"#,
        "the checkpoint handed to attempt 2 (the latest one saved)",
    );
}

/// A checkpoint with a token that is not the attempt's, or after the attempt
/// finished, is refused with `LeaseLost { id }` and stores nothing.
pub async fn checkpoint_with_a_lost_lease_is_refused_with_lease_lost<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let job = running(s, LONG_LEASE).await;
    let id = job.lease.id;
    let stale = crate::support::stale(job.lease);
    assert_lease_lost(
        checkpoint(s, stale, r#"{"x":1}"#).await,
        id,
        "with a stale token",
    );
    assert_eq!(
        record(s, id).await.checkpoint,
        None,
        "a refused checkpoint stores nothing"
    );

    finish_ok(s, job.lease, FinishOutcome::Completed).await;
    let after_finish = checkpoint(s, job.lease, r#"{"x":2}"#).await;
    assert_lease_lost(after_finish, id, "after the attempt finished");
    assert_eq!(record(s, id).await.checkpoint, None);
}

/// The checkpoint outlives the attempt that saved it: through a release, a
/// rescue, and an operator's retry of a dead job.
pub async fn checkpoint_survives_release_rescue_and_retry<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let first = running(s, LONG_LEASE).await;
    let (q, id) = (first.queue.clone(), first.lease.id);

    save(s, first.lease, r#"{"step":1}"#).await;
    assert_eq!(release(s, vec![first.lease]).await, 1);
    let second = claim_one(s, &q, id, SHORT_LEASE).await;
    let got = second
        .checkpoint
        .as_deref()
        .expect("kept through a release");
    assert_same_json(got, r#"{"step":1}"#, "the checkpoint after a release");

    save(s, second.lease, r#"{"step":2}"#).await;
    rescue_until(s, 5, 1).await;
    let third = claim_one(s, &q, id, LONG_LEASE).await;
    let got = third.checkpoint.as_deref().expect("kept through a rescue");
    assert_same_json(got, r#"{"step":2}"#, "the checkpoint after a rescue");

    save(s, third.lease, r#"{"step":3}"#).await;
    finish_ok(s, third.lease, failed(third.attempt, "fatal", None)).await;
    assert!(retry(s, id).await, "retry of a dead job");
    let fourth = claim_one(s, &q, id, LONG_LEASE).await;
    let got = fourth.checkpoint.as_deref().expect("kept through a retry");
    assert_same_json(
        got,
        r#"{"step":3}"#,
        "the checkpoint after an operator's retry",
    );
}

/// An operator's retry of a *completed* job starts it from a clean slate:
/// its checkpoint is the end state of a run that finished, and resuming
/// from it would do nothing (or skip the work the operator asked for
/// again). A dead or cancelled job keeps its checkpoint (see above).
pub async fn retry_of_a_completed_job_starts_from_a_clean_checkpoint<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let first = running(s, LONG_LEASE).await;
    let (q, id) = (first.queue.clone(), first.lease.id);
    save(s, first.lease, r#"{"step":"done"}"#).await;
    finish_ok(s, first.lease, FinishOutcome::Completed).await;
    assert!(retry(s, id).await, "retry of a completed job");
    assert_eq!(
        record(s, id).await.checkpoint,
        None,
        "the record's checkpoint"
    );
    let again = claim_one(s, &q, id, LONG_LEASE).await;
    assert_eq!(again.checkpoint, None, "the claimed attempt starts clean");
}
