//! Large batches: thousands of jobs in one `enqueue` are recorded, numbered,
//! refused and claimed exactly as a batch of two would be. A store may write
//! a long batch another way (PostgreSQL copies long runs of plain jobs with
//! `COPY`); the contract does not change with the batch's size.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use steward_core::store::{Enqueued, JobId, JobState, NewJob, UniqueScope};

use crate::Harness;
use crate::cases::enqueue::assert_refused;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, assert_between, assert_same_json, assert_same_ms, claim_from,
    counts, enqueue, fresh_queue, ms, now, record, slack,
};

/// Jobs in "a large batch": well past any size a store might treat as small.
const LARGE: usize = 1_600;

/// When a job of a large batch first runs, as given.
#[derive(Debug, Clone, Copy)]
enum First {
    /// Neither `run_at` nor `delay`.
    Now,
    /// `delay(Duration::ZERO)`.
    ZeroDelay,
    /// A delay the case never waits out.
    Delay(Duration),
    /// `delay(Duration::MAX)`: saturates, never an error.
    Forever,
    /// An absolute `run_at`, after now or before it.
    At(DateTime<Utc>),
}

/// One job of a batch and how it should first run.
struct Spec {
    job: NewJob,
    first: First,
}

/// The varied payloads of a large batch: escapes, non-ASCII text, `null`,
/// arrays, numbers, bare strings, whitespace, and some large enough that the
/// batch passes a megabyte.
fn varied_payload(i: usize) -> String {
    match i % 10 {
        0 => json!({
            "i": i,
            "text": "tab\there\nnext line\r\n back\\slash \"quoted\" 'single' naïve ✓",
        })
        .to_string(),
        1 => "null".to_string(),
        2 => json!([i, "x", null, true, false, {"nested": [1.5, -2, []]}]).to_string(),
        3 => format!("{}", -7 * i64::try_from(i).expect("a small index")),
        4 => format!("{i}.25"),
        5 => json!("naïve ✓\t\n\\\"end 😀").to_string(),
        // Escape sequences as the caller wrote them (not as serde would).
        6 => r#"{"escaped":"\u00e9\t\u2713\n\\ \"","emoji":"😀","empty":"","zero":0}"#.to_string(),
        7 => json!({ "big": "x".repeat(8_000), "i": i }).to_string(),
        8 => "  { \"spaced\" : [ 1 , 2 ] , \"t\" : true }  ".to_string(),
        _ => json!({ "i": i, "deep": { "a": { "b": { "c": ["naïve", "✓"] } } } }).to_string(),
    }
}

/// A large batch with every option varied. Job `i` has kind `k{i}`; queues
/// alternate between `queues`.
fn varied_batch(queues: [&str; 2]) -> Vec<Spec> {
    let future = ms(now() + TimeDelta::hours(2));
    let past = ms(now() - TimeDelta::hours(1));
    (0..LARGE)
        .map(|i| {
            let n = i64::try_from(i).expect("a small index");
            let priority = match i % 11 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => i16::try_from(i % 9).expect("a small number") - 4,
            };
            let max_attempts = match i % 13 {
                0 => 1,
                1 => 1_000,
                _ => 2 + u32::try_from(i % 40).expect("a small number"),
            };
            let first = match i % 7 {
                0 => First::Now,
                1 => First::ZeroDelay,
                2 => First::Delay(HOUR),
                3 => First::Forever,
                4 => First::At(future + TimeDelta::milliseconds(n)),
                5 => First::At(past + TimeDelta::milliseconds(n)),
                _ => First::Delay(Duration::from_secs(90)),
            };
            let mut job = NewJob::new(format!("k{i}"), varied_payload(i))
                .queue(queues[i % 2])
                .priority(priority)
                .max_attempts(max_attempts);
            job = match first {
                First::Now => job,
                First::ZeroDelay => job.delay(Duration::ZERO),
                First::Delay(d) => job.delay(d),
                First::Forever => job.delay(Duration::MAX),
                First::At(t) => job.run_at(t),
            };
            job = match i % 5 {
                0 => job.timeout(Duration::from_millis(
                    500 + u64::try_from(i).expect("small"),
                )),
                1 => job.timeout(Duration::from_secs(86_400)),
                _ => job,
            };
            Spec { job, first }
        })
        .collect()
}

/// The state a job should have right after its enqueue.
fn first_state(first: First, at_enqueue: DateTime<Utc>) -> JobState {
    match first {
        First::Now | First::ZeroDelay => JobState::Available,
        First::Delay(_) | First::Forever => JobState::Scheduled,
        First::At(t) if t > at_enqueue => JobState::Scheduled,
        First::At(_) => JobState::Available,
    }
}

/// Asserts `out` answers a batch without duplicates: none is a duplicate,
/// and ids strictly increase in the batch's order.
fn assert_fresh_increasing(out: &[Enqueued], what: &str) {
    for (i, e) in out.iter().enumerate() {
        assert!(
            !e.duplicate,
            "job {i} of {what} has no unique key, yet was reported a duplicate"
        );
    }
    if let Some(i) = out.windows(2).position(|w| w[0].id >= w[1].id) {
        panic!(
            "ids should increase in insertion order within {what}, but job {i} has id {} and \
             job {} has id {}",
            out[i].id,
            i + 1,
            out[i + 1].id
        );
    }
    let distinct: BTreeSet<JobId> = out.iter().map(|e| e.id).collect();
    assert_eq!(
        distinct.len(),
        out.len(),
        "every job of {what} should get an id of its own"
    );
}

/// Asserts two orders of ids are equal, naming the first place they differ.
fn assert_same_order(actual: &[JobId], expected: &[JobId], what: &str) {
    if let Some(i) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!(
            "{what}: position {i} should be job {}, but is job {} (expected {:?}…, got {:?}…)",
            expected[i],
            actual[i],
            &expected[i..(i + 5).min(expected.len())],
            &actual[i..(i + 5).min(actual.len())],
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} jobs expected, {} returned",
        expected.len(),
        actual.len()
    );
}

/// A batch of thousands of jobs is recorded exactly as a small one: one
/// result per job, in order, ids increasing and fresh, and each job's
/// kind, queue, priority, max_attempts, payload (as JSON), timeout, first
/// state and `run_at` as given (`delay` from the store's now, a given
/// `run_at` to the millisecond, `Duration::MAX` saturating). A later
/// batch's ids are greater.
pub async fn large_batch_is_recorded_exactly_like_a_small_one<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let (qa, qb) = (fresh_queue("large-a"), fresh_queue("large-b"));
    let specs = varied_batch([&qa, &qb]);
    let before = now();
    let out = enqueue(s, specs.iter().map(|spec| spec.job.clone()).collect()).await;
    let after = now();
    assert_fresh_increasing(&out, "a large batch");

    let (mut scheduled, mut available) = (0, 0);
    for (i, (spec, e)) in specs.iter().zip(&out).enumerate() {
        let job = &spec.job;
        let r = record(s, e.id).await;
        assert_eq!(r.id, e.id, "job({}) should be job {}", e.id, e.id);
        assert_eq!(
            r.kind, job.kind,
            "result {i} of a large batch should be the id of input {i}"
        );
        assert_eq!(r.queue, job.queue, "queue of job {i} of a large batch");
        assert_eq!(
            r.priority, job.priority,
            "priority of job {i} of a large batch"
        );
        assert_eq!(
            r.max_attempts, job.max_attempts,
            "max_attempts of job {i} of a large batch"
        );
        assert_same_json(
            &r.payload,
            &job.payload,
            &format!("the payload of job {i} of a large batch"),
        );
        assert_eq!(
            r.timeout, job.timeout,
            "timeout of job {i} of a large batch"
        );
        assert_eq!(r.attempt, 0, "job {i} of a large batch has not run");
        assert!(
            r.errors.is_empty(),
            "job {i} of a large batch has no errors"
        );
        assert_eq!(r.unique_key, None, "job {i} of a large batch has no key");
        assert_between(
            r.created_at,
            before,
            after,
            &format!("created_at of job {i} of a large batch"),
        );
        let state = first_state(spec.first, r.created_at);
        assert_eq!(
            r.state, state,
            "job {i} of a large batch ({:?}) should be {state}",
            spec.first
        );
        match state {
            JobState::Scheduled => scheduled += 1,
            _ => available += 1,
        }
        match spec.first {
            First::Now | First::ZeroDelay => assert_same_ms(
                r.run_at,
                r.created_at,
                &format!(
                    "run_at of job {i} of a large batch, due now ({:?})",
                    spec.first
                ),
            ),
            First::Delay(d) => {
                let due = r.created_at + TimeDelta::from_std(d).expect("a short delay");
                assert!(
                    (r.run_at - due).abs() <= slack(),
                    "run_at of job {i} of a large batch should be the store's now (created_at \
                     {}) + {d:?}, but is {}",
                    r.created_at,
                    r.run_at
                );
            }
            First::Forever => assert!(
                r.run_at > now() + TimeDelta::days(365 * 1000),
                "a Duration::MAX delay (job {i} of a large batch) should put run_at at the \
                 store's latest time, not {}",
                r.run_at
            ),
            First::At(t) => assert_same_ms(
                r.run_at,
                t,
                &format!("run_at of job {i} of a large batch, given as {t}"),
            ),
        }
    }
    let c = counts(s).await;
    assert_eq!(
        (c.scheduled, c.available, c.total()),
        (scheduled, available, LARGE as u64),
        "counts after a large batch should count each job once in its first state \
         (scheduled, available, total)"
    );

    let later = enqueue(
        s,
        vec![NewJob::new("later-1", "{}"), NewJob::new("later-2", "{}")],
    )
    .await;
    let last = out[LARGE - 1].id;
    assert!(
        later[0].id > last && later[1].id > later[0].id,
        "a later batch's ids ({}, {}) should be greater than a large batch's last ({last})",
        later[0].id,
        later[1].id
    );
}

/// Unique jobs inside a large batch split it into runs of plain jobs: a
/// job whose key an earlier job of the batch holds is a duplicate with
/// that job's id, and every other job is inserted with ids increasing in
/// the batch's order, each result the id of its own input.
pub async fn large_batch_with_unique_jobs_keeps_order_and_duplicates<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("large-unique");
    let mut batch = Vec::new();
    // For each job: `Some(j)` if it must be a duplicate of job `j`.
    let mut duplicate_of: Vec<Option<usize>> = Vec::new();
    let plain = |batch: &mut Vec<NewJob>, dup: &mut Vec<Option<usize>>, n: usize| {
        for _ in 0..n {
            let i = batch.len();
            batch.push(NewJob::new(format!("p{i}"), json!({ "i": i }).to_string()).queue(&queue));
            dup.push(None);
        }
    };
    let unique = |batch: &mut Vec<NewJob>, key: &str, scope: UniqueScope| {
        let i = batch.len();
        batch.push(
            NewJob::new(format!("u{i}"), json!({ "key": key }).to_string())
                .queue(&queue)
                .unique(key, scope),
        );
    };
    plain(&mut batch, &mut duplicate_of, 700);
    let a = batch.len();
    unique(&mut batch, "key-a", UniqueScope::Queued);
    duplicate_of.push(None);
    plain(&mut batch, &mut duplicate_of, 900);
    unique(&mut batch, "key-a", UniqueScope::Queued);
    duplicate_of.push(Some(a));
    plain(&mut batch, &mut duplicate_of, 600);
    let b = batch.len();
    unique(&mut batch, "key-b", UniqueScope::Active);
    duplicate_of.push(None);
    plain(&mut batch, &mut duplicate_of, 512);
    unique(&mut batch, "key-a", UniqueScope::Queued);
    duplicate_of.push(Some(a));
    plain(&mut batch, &mut duplicate_of, 511);
    unique(&mut batch, "key-b", UniqueScope::Active);
    duplicate_of.push(Some(b));

    let out = enqueue(s, batch.clone()).await;
    let mut inserted = Vec::new();
    for (i, (e, dup)) in out.iter().zip(&duplicate_of).enumerate() {
        match dup {
            Some(j) => {
                assert!(
                    e.duplicate,
                    "job {i} of a large batch repeats the key of job {j}: it should be a \
                     duplicate, got {e:?}"
                );
                assert_eq!(
                    e.id, out[*j].id,
                    "a duplicate (job {i}) should carry the id of the job holding its key \
                     (job {j})"
                );
            }
            None => {
                assert!(
                    !e.duplicate,
                    "job {i} of a large batch holds no key already held, yet was a duplicate"
                );
                inserted.push(*e);
            }
        }
    }
    assert_fresh_increasing(
        &inserted,
        "a large batch with unique jobs (its inserted jobs)",
    );
    for (i, (job, e)) in batch.iter().zip(&out).enumerate() {
        if duplicate_of[i].is_some() {
            continue;
        }
        let r = record(s, e.id).await;
        assert_eq!(
            r.kind, job.kind,
            "result {i} of a large batch with unique jobs should be the id of input {i}"
        );
        assert_same_json(&r.payload, &job.payload, "the payload");
        assert_eq!(
            r.unique_key,
            job.unique.as_ref().map(|(key, _)| key.clone()),
            "job {i}'s unique key"
        );
    }
    let c = counts(s).await;
    assert_eq!(
        (c.available, c.total()),
        (inserted.len() as u64, inserted.len() as u64),
        "every inserted job of the batch is available, and duplicates are not written"
    );
}

/// One invalid job anywhere in a large batch refuses the whole batch with
/// `StoreError::Invalid`, and nothing of it is written (its unique keys
/// included).
pub async fn large_batch_with_one_invalid_job_is_refused_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("large-invalid");
    let valid = |n: usize| -> Vec<NewJob> {
        (0..n)
            .map(|i| NewJob::new(format!("k{i}"), json!({ "i": i }).to_string()).queue(&queue))
            .collect()
    };
    let mut last_not_json = valid(1_499);
    last_not_json.push(NewJob::new("invalid", "not json").queue(&queue));
    assert_refused(
        s,
        last_not_json,
        "1,500 jobs, the last a payload that is not JSON",
    )
    .await;

    let mut keyed_then_invalid = vec![
        NewJob::new("keyed", "{}")
            .queue(&queue)
            .unique("large-refused", UniqueScope::Queued),
    ];
    keyed_then_invalid.extend(valid(1_498));
    keyed_then_invalid.push(NewJob::new("invalid", "{}").queue(&queue).max_attempts(0));
    assert_refused(
        s,
        keyed_then_invalid,
        "1,500 jobs, a unique key first and max_attempts 0 last",
    )
    .await;

    let mut middle_empty_queue = valid(1_500);
    middle_empty_queue[1_000] = NewJob::new("invalid", "{}").queue("");
    assert_refused(
        s,
        middle_empty_queue,
        "1,500 jobs, job 1,000 with an empty queue",
    )
    .await;

    let mut both_times = valid(1_500);
    both_times[1_499] = NewJob::new("invalid", "{}")
        .queue(&queue)
        .run_at(now() + TimeDelta::minutes(1))
        .delay(Duration::from_secs(60));
    assert_refused(
        s,
        both_times,
        "1,500 jobs, the last with both run_at and delay",
    )
    .await;

    // Nothing of the refused batches is held: the key is free.
    let out = enqueue(
        s,
        vec![
            NewJob::new("keyed", "{}")
                .queue(&queue)
                .unique("large-refused", UniqueScope::Queued),
        ],
    )
    .await;
    assert!(
        !out[0].duplicate,
        "a refused large batch must leave no unique key behind"
    );
}

/// Claiming after a large batch serves a queue in (priority, run_at, id)
/// order, as after small batches, and takes only due jobs of that queue.
pub async fn claim_after_a_large_batch_orders_by_priority_then_run_at_then_id<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("large-claim");
    let other = fresh_queue("large-other");
    let base = ms(now() - TimeDelta::hours(1));
    /// What the case expects of a job: its queue's claim key, if due.
    struct Expect {
        priority: i16,
        /// Milliseconds of a past `run_at`; `i64::MAX` for "now", which is
        /// after every past one.
        run_at: i64,
    }
    let mut batch = Vec::new();
    let mut due: Vec<(usize, Expect)> = Vec::new();
    let (mut not_due, mut elsewhere) = (0_u64, 0_u64);
    for i in 0..1_800_usize {
        let n = i64::try_from(i).expect("a small index");
        let priority = i16::try_from((i * 7) % 5).expect("small") - 2;
        let job = NewJob::new(format!("k{i}"), json!({ "i": i }).to_string()).priority(priority);
        let job = match i % 10 {
            9 => {
                elsewhere += 1;
                batch.push(job.queue(&other));
                continue;
            }
            8 => {
                not_due += 1;
                let job = job.queue(&queue);
                batch.push(if i % 20 == 8 {
                    job.delay(HOUR)
                } else {
                    job.run_at(ms(now() + TimeDelta::hours(1)))
                });
                continue;
            }
            _ => job.queue(&queue),
        };
        let (job, run_at) = match i % 4 {
            0 => {
                let at = base + TimeDelta::seconds(n % 13);
                (job.run_at(at), at.timestamp_millis())
            }
            1 => (job, i64::MAX),
            2 => (job.delay(Duration::ZERO), i64::MAX),
            _ => {
                let at = base + TimeDelta::seconds((n * 3) % 13);
                (job.run_at(at), at.timestamp_millis())
            }
        };
        batch.push(job);
        due.push((i, Expect { priority, run_at }));
    }
    let out = enqueue(s, batch).await;
    assert_fresh_increasing(&out, "a large batch");
    due.sort_by_key(|(i, e)| (e.priority, e.run_at, *i));
    let expected: Vec<JobId> = due.iter().map(|(i, _)| out[*i].id).collect();

    let mut claimed = Vec::new();
    loop {
        let chunk = claim_from(s, &[(&queue, 128)], LONG_LEASE).await;
        if chunk.is_empty() {
            break;
        }
        assert!(
            chunk.len() <= 128,
            "a claim with limit 128 returned {} jobs",
            chunk.len()
        );
        claimed.extend(chunk.iter().map(|c| c.lease.id));
        assert!(
            claimed.len() <= expected.len(),
            "claims returned more jobs ({}) than the {} due in the queue",
            claimed.len(),
            expected.len()
        );
    }
    assert_same_order(
        &claimed,
        &expected,
        "claims after a large batch should serve the queue by (priority, run_at, id)",
    );
    let c = counts(s).await;
    assert_eq!(
        (c.running, c.scheduled, c.available),
        (expected.len() as u64, not_due, elsewhere),
        "claims should take every due job of the queue and nothing else (running, scheduled, \
         available in another queue)"
    );
}
