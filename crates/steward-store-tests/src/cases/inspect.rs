//! `job` and `counts`: what operators see.

use std::time::Duration;

use steward_core::store::{
    AttemptError, ErrorKind, FinishOutcome, JobId, JobState, StateCounts, Store,
};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, SHORT_LEASE, assert_same_ms, attempt_error, claim_one, counts,
    enqueue_one, finish_ok, fresh_queue, job_in, job_in_state, record, rescue_until, transient,
};

/// `job` of an id that is not there is `None`, not an error.
pub async fn job_of_an_unknown_id_is_none<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let get = |id| async move {
        transient(|| s.job(id))
            .await
            .unwrap_or_else(|e| panic!("job({id}) on a missing id should be Ok(None): {e}"))
    };
    assert_eq!(get(JobId(1)).await, None, "an empty store");
    let id = enqueue_one(s, job_in("default")).await;
    for missing in [JobId(id.0 + 1_000_000), JobId(0), JobId(-1)] {
        assert_eq!(get(missing).await, None, "job({missing})");
    }
}

/// `JobRecord::errors` holds every failed attempt oldest first, each as it
/// was recorded (attempt, kind, message, time).
pub async fn job_lists_attempt_errors_oldest_first<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("errors");
    let id = enqueue_one(s, job_in(&q)).await;
    let failures = [
        (
            ErrorKind::Error,
            "connect: refused\ncaused by: os error 111",
        ),
        (ErrorKind::Panic, "panicked at 'index out of bounds' ✗"),
        (ErrorKind::Timeout, "attempt overran its timeout of 30s"),
        (ErrorKind::Payload, "missing field `to`"),
    ];
    let mut given: Vec<AttemptError> = Vec::new();
    for (kind, message) in failures {
        let job = claim_one(s, &q, id, LONG_LEASE).await;
        let error = attempt_error(job.attempt, kind, message);
        given.push(error.clone());
        let retry_in = Some(Duration::ZERO);
        finish_ok(s, job.lease, FinishOutcome::Failed { error, retry_in }).await;
    }
    let lost = claim_one(s, &q, id, SHORT_LEASE).await;
    rescue_until(s, 10, 1).await;
    let last = claim_one(s, &q, id, LONG_LEASE).await;
    let reason = "cancelled: customer closed the account".to_string();
    finish_ok(s, last.lease, FinishOutcome::Cancelled { reason }).await;

    let r = record(s, id).await;
    assert_eq!(
        r.errors.len(),
        6,
        "four failures, one rescue, one cancel: {:?}",
        r.errors
    );
    for (i, (got, want)) in r.errors.iter().zip(&given).enumerate() {
        assert_eq!(
            (got.attempt, got.kind, got.message.as_str()),
            (want.attempt, want.kind, want.message.as_str()),
            "error {i} should be failure {i}, as given"
        );
        assert_same_ms(got.at, want.at, "an error's time as given");
    }
    let attempts: Vec<u32> = r.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4, lost.attempt, last.attempt]);
    assert_eq!(lost.attempt, 5);
    assert_eq!(last.attempt, 5, "the rescued attempt did not count");
    let kinds: Vec<ErrorKind> = r.errors[4..].iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ErrorKind::WorkerLost, ErrorKind::Cancelled]);
    assert!(
        r.errors.windows(2).all(|w| w[0].at <= w[1].at),
        "errors should be oldest first: {:?}",
        r.errors
    );
    assert_eq!(r.attempt, 5);
}

/// `counts` counts every state, and an empty store counts nothing.
pub async fn counts_count_every_state<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert_eq!(counts(s).await, StateCounts::default(), "an empty store");
    for state in JobState::ALL {
        job_in_state(s, state).await;
    }
    job_in_state(s, JobState::Available).await;
    job_in_state(s, JobState::Dead).await;
    let expected = StateCounts {
        scheduled: 1,
        available: 2,
        running: 1,
        retryable: 1,
        completed: 1,
        dead: 2,
        cancelled: 1,
    };
    assert_eq!(counts(s).await, expected);
    let other = f.another_handle(h).await;
    assert_eq!(
        counts(&*other).await,
        expected,
        "another handle counts the same"
    );
}
