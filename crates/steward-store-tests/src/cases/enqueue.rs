//! `enqueue`: results, validation, the recorded job and its first state.

use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{JobId, JobState, NewJob, Store, StoreError, UniqueScope};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, assert_between, assert_same_json, assert_same_ms, claim_from,
    counts, enqueue, enqueue_one, fresh_queue, ms, now, record, slack, transient,
};

/// One result per job, in input order, with ids increasing in insertion
/// order within and across batches.
pub async fn enqueue_returns_one_result_per_job_in_order_with_increasing_ids<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let kinds = ["first", "second", "third", "fourth", "fifth"];
    let out = enqueue(s, kinds.iter().map(|k| NewJob::new(*k, "{}")).collect()).await;
    for (i, (kind, e)) in kinds.iter().zip(&out).enumerate() {
        assert!(
            !e.duplicate,
            "job {i} of the batch has no unique key, yet was a duplicate"
        );
        assert_eq!(
            record(s, e.id).await.kind,
            *kind,
            "result {i} should be the id of input {i}"
        );
    }
    assert!(
        out.windows(2).all(|w| w[0].id < w[1].id),
        "ids should increase in insertion order: {out:?}"
    );
    let later = enqueue_one(s, NewJob::new("later", "{}")).await;
    assert!(
        later > out[4].id,
        "a later batch's id ({later}) should be greater"
    );
}

/// Refuses `batch` with `StoreError::Invalid` and checks nothing was written.
pub(crate) async fn assert_refused<S: Store>(store: &S, batch: Vec<NewJob>, what: &str) {
    let result = transient(|| store.enqueue(batch.clone())).await;
    match result {
        Err(StoreError::Invalid { .. }) => {}
        Err(other) => panic!("enqueue with {what} should fail with Invalid, got {other:?}"),
        Ok(ids) => panic!("enqueue with {what} should be refused, but inserted {ids:?}"),
    }
    assert_eq!(
        counts(store).await.total(),
        0,
        "a refused batch ({what}) must write nothing, not even its valid jobs"
    );
}

/// A payload that is not JSON refuses the whole batch.
pub async fn enqueue_refuses_a_payload_that_is_not_json_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    for payload in ["", "not json", r#"{"unterminated": "#, "{} {}"] {
        let batch = vec![
            NewJob::new("valid", r#"{"ok":true}"#),
            NewJob::new("invalid", payload),
        ];
        assert_refused(&*f.store, batch, &format!("payload {payload:?}")).await;
    }
}

/// An empty kind refuses the whole batch.
pub async fn enqueue_refuses_an_empty_kind_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let batch = vec![NewJob::new("valid", "{}"), NewJob::new("", "{}")];
    assert_refused(&*f.store, batch, "an empty kind").await;
}

/// An empty queue refuses the whole batch.
pub async fn enqueue_refuses_an_empty_queue_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let batch = vec![NewJob::new("valid", "{}"), NewJob::new("k", "{}").queue("")];
    assert_refused(&*f.store, batch, "an empty queue").await;
}

/// `max_attempts == 0` refuses the whole batch.
pub async fn enqueue_refuses_zero_max_attempts_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let batch = vec![
        NewJob::new("valid", "{}"),
        NewJob::new("k", "{}").max_attempts(0),
    ];
    assert_refused(&*f.store, batch, "max_attempts 0").await;
}

/// A job with both an absolute `run_at` and a `delay` is ambiguous: it
/// refuses the whole batch.
pub async fn enqueue_refuses_both_run_at_and_delay_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let batch = vec![
        NewJob::new("valid", "{}").delay(Duration::from_secs(60)),
        NewJob::new("k", "{}")
            .run_at(now() + TimeDelta::minutes(1))
            .delay(Duration::from_secs(60)),
    ];
    assert_refused(&*f.store, batch, "both run_at and delay").await;
}

/// A `run_at` outside years 1 to 9999 refuses the whole batch: every store
/// and every client can hold and print such a time, and nothing further
/// out means anything but "never" (a delay saturates to that instead).
pub async fn enqueue_refuses_a_run_at_outside_years_1_to_9999_and_writes_nothing<H: Harness>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let too_late = chrono::NaiveDate::from_ymd_opt(10_000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc();
    let too_early = chrono::NaiveDate::from_ymd_opt(0, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .expect("a valid date")
        .and_utc();
    for (at, what) in [
        (too_late, "run_at in year 10000"),
        (
            chrono::DateTime::<chrono::Utc>::MAX_UTC,
            "run_at at chrono's maximum",
        ),
        (too_early, "run_at in year 0"),
        (
            chrono::DateTime::<chrono::Utc>::MIN_UTC,
            "run_at at chrono's minimum",
        ),
    ] {
        let batch = vec![
            NewJob::new("valid", "{}"),
            NewJob::new("k", "{}").run_at(at),
        ];
        assert_refused(&*f.store, batch, what).await;
    }
}

/// The record of a new job holds everything it was given, and nothing of a
/// life it has not had yet.
pub async fn enqueue_records_every_field_of_the_new_job<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let payload = r#"{"to":"ada@example.com","n":[1,2.5,-3],"nested":{"ok":true,"none":null},"text":"naïve ✓ \"quoted\"\nline"}"#;
    let before = now();
    let out = enqueue(
        s,
        vec![
            NewJob::new("email", payload)
                .queue("mail")
                .priority(-3)
                .max_attempts(7)
                .timeout(Duration::from_secs(90))
                .unique("email:ada", UniqueScope::Active),
            NewJob::new("noop", "null"),
        ],
    )
    .await;
    let after = now();

    let r = record(s, out[0].id).await;
    assert_eq!(r.id, out[0].id);
    assert_eq!(r.kind, "email");
    assert_eq!(r.queue, "mail");
    assert_eq!(r.state, JobState::Available);
    assert_eq!(r.priority, -3);
    assert_same_json(&r.payload, payload, "the stored payload");
    assert_eq!(r.attempt, 0, "no attempt has started");
    assert_eq!(r.max_attempts, 7);
    assert_between(r.run_at, before, after, "run_at of a job without run_at");
    assert_between(r.created_at, before, after, "created_at");
    assert_eq!(r.attempted_at, None, "attempted_at before any claim");
    assert_eq!(r.finished_at, None, "finished_at before any finish");
    assert!(r.errors.is_empty(), "a new job has no errors");
    assert_eq!(r.checkpoint, None, "a new job has no checkpoint");
    assert_eq!(r.worker, None, "a new job has no worker");
    assert_eq!(r.lease_expires_at, None, "a new job has no lease");
    assert_eq!(r.rescues, 0);
    assert_eq!(r.interrupted, 0);
    assert!(!r.cancel_requested);
    assert_eq!(r.timeout, Some(Duration::from_secs(90)));
    assert_eq!(r.unique_key.as_deref(), Some("email:ada"));

    let d = record(s, out[1].id).await;
    assert_eq!(d.queue, "default", "the default queue");
    assert_eq!(d.priority, 0, "the default priority");
    assert_eq!(d.max_attempts, 25, "the default max_attempts");
    assert_eq!(d.timeout, None);
    assert_eq!(d.unique_key, None, "a job without a key holds none");
    assert_same_json(&d.payload, "null", "a `null` payload");
}

/// Without `run_at` a job is available at once, due now.
pub async fn enqueue_without_run_at_is_available_now<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let before = now();
    let id = enqueue_one(&*f.store, NewJob::new("k", "{}")).await;
    let after = now();
    let r = record(&*f.store, id).await;
    assert_eq!(r.state, JobState::Available);
    assert_between(r.run_at, before, after, "run_at of a job enqueued for now");
}

/// `run_at` after now makes the job scheduled, at or before now available;
/// either way `run_at` is kept as given (to the millisecond).
pub async fn enqueue_with_a_future_run_at_is_scheduled_and_a_past_one_available<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("when");
    let later = ms(now() + TimeDelta::hours(1));
    let earlier = ms(now() - TimeDelta::hours(1));
    let out = enqueue(
        s,
        vec![
            NewJob::new("k", "{}").queue(&queue).run_at(later),
            NewJob::new("k", "{}").queue(&queue).run_at(earlier),
        ],
    )
    .await;
    let scheduled = record(s, out[0].id).await;
    assert_eq!(scheduled.state, JobState::Scheduled, "run_at in an hour");
    assert_same_ms(scheduled.run_at, later, "a scheduled job's run_at");
    let available = record(s, out[1].id).await;
    assert_eq!(available.state, JobState::Available, "run_at an hour ago");
    assert_same_ms(available.run_at, earlier, "a past run_at");
    let c = counts(s).await;
    assert_eq!((c.scheduled, c.available), (1, 1));
}

/// `delay` counts from the store's clock: the job is scheduled, due that
/// long after the `created_at` the store wrote (its own now), whatever the
/// caller's clock says; a zero delay is due at once.
pub async fn enqueue_with_a_delay_is_scheduled_that_long_after_the_store_now<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("delay");
    let out = enqueue(
        s,
        vec![
            NewJob::new("k", "{}").queue(&queue).delay(HOUR),
            NewJob::new("k", "{}").queue(&queue).delay(Duration::ZERO),
        ],
    )
    .await;
    let delayed = record(s, out[0].id).await;
    assert_eq!(delayed.state, JobState::Scheduled, "a delay of an hour");
    let off_by = (delayed.run_at - (delayed.created_at + TimeDelta::hours(1))).abs();
    assert!(
        off_by <= slack(),
        "run_at should be the store's now (created_at {}) + 1 h, but is {}",
        delayed.created_at,
        delayed.run_at
    );
    let now_job = record(s, out[1].id).await;
    assert_eq!(now_job.state, JobState::Available, "a delay of zero");
    assert_same_ms(now_job.run_at, now_job.created_at, "run_at of a zero delay");
    let claimed = claim_from(s, &[(&queue, 10)], LONG_LEASE).await;
    let ids: Vec<JobId> = claimed.iter().map(|c| c.lease.id).collect();
    assert_eq!(
        ids,
        vec![out[1].id],
        "only the job without a real delay is due"
    );
}

/// A delay longer than any time the store can hold is not an error: the
/// job is scheduled at the latest time the store holds (never, in practice).
pub async fn enqueue_with_an_absurd_delay_saturates_instead_of_failing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("forever");
    let id = enqueue_one(s, NewJob::new("k", "{}").queue(&queue).delay(Duration::MAX)).await;
    let r = record(s, id).await;
    assert_eq!(r.state, JobState::Scheduled);
    assert!(
        r.run_at > now() + TimeDelta::days(365 * 1000),
        "a Duration::MAX delay should put run_at at the store's latest time, not {}",
        r.run_at
    );
    assert!(claim_from(s, &[(&queue, 10)], LONG_LEASE).await.is_empty());
}
