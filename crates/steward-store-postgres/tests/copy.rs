//! Large batches, which `Store::enqueue` writes with `COPY … FROM STDIN`
//! (plain runs of at least 512 jobs, `src/ops/copy.rs`) and `enqueue_in`, on
//! a caller's connection, by `INSERT` (`tests/copy_fallbacks.rs` says why),
//! against the real server:
//! the caller's transaction, refusals by the server, wake-ups, and times on
//! the database's clock. Each test has a schema of its own.

mod common;

use std::time::{Duration, Instant};

use common::TestSchema;
use common::wake::{LONG_WAIT, PROMPT, assert_woken_by_commit, listening, waiter};
use serde_json::json;
use sqlx::{Connection as _, Executor as _, PgConnection};
use steward_core::store::{Enqueued, JobId, NewJob, Store, StoreError};
use steward_store_postgres::{PostgresStore, enqueue_in};

/// Jobs in a large batch: well past the store's 512, so the batch is copied.
const LARGE: usize = 1_200;

const HOUR: Duration = Duration::from_secs(3600);

/// Valid JSON that jsonb refuses (a NUL character): only the server can
/// tell.
const JSONB_REFUSES: &str = r#"{"a":"\u0000"}"#;

async fn migrated(schema: &TestSchema) -> PostgresStore {
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    store
}

/// `n` plain jobs of kinds `{prefix}{i}`, due now.
fn plain(n: usize, prefix: &str) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::new(format!("{prefix}{i}"), json!({ "i": i }).to_string()))
        .collect()
}

/// Every job of the schema as (id, kind), by id.
async fn rows(conn: &mut PgConnection, schema: &TestSchema) -> Vec<(i64, String)> {
    sqlx::query_as(&format!(
        "SELECT id, kind FROM \"{}\".jobs ORDER BY id",
        schema.name
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("reading the jobs")
}

/// The (id, kind) rows `out` should have written for `jobs`.
fn expected_rows(jobs: &[NewJob], out: &[Enqueued]) -> Vec<(i64, String)> {
    assert_eq!(out.len(), jobs.len(), "one result per job");
    jobs.iter()
        .zip(out)
        .map(|(job, e)| {
            assert!(!e.duplicate, "a plain job was reported a duplicate");
            (e.id.0, job.kind.clone())
        })
        .collect()
}

/// Asserts two lists of rows are equal, naming the first that differs
/// (a whole batch is too long to print).
fn assert_same_rows<T: PartialEq + std::fmt::Debug>(actual: &[T], expected: &[T], what: &str) {
    if let Some(i) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!(
            "{what}: row {i} should be {:?}, but is {:?}",
            expected[i], actual[i]
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} rows expected, {} found",
        expected.len(),
        actual.len()
    );
}

async fn count(conn: &mut PgConnection, schema: &TestSchema, filter: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE {filter}",
        schema.name
    ))
    .fetch_one(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("counting jobs where {filter}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_enqueue_in_commits_or_rolls_back_with_the_callers_transaction() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let mut conn = schema.raw().await;
    conn.execute(format!("CREATE TABLE \"{}\".orders (id bigint)", schema.name).as_str())
        .await
        .expect("creating the caller's table");
    let insert_order = format!("INSERT INTO \"{}\".orders (id) VALUES (42)", schema.name);

    // Rolled back: neither the business row nor any job.
    let batch = plain(LARGE, "rolled");
    let mut tx = store.pool().begin().await.expect("begin");
    tx.execute(insert_order.as_str()).await.expect("order");
    let rolled = enqueue_in(&mut tx, &store, batch.clone())
        .await
        .expect("enqueue_in of a large batch");
    let written = expected_rows(&batch, &rolled);
    assert_same_rows(
        &rows(&mut tx, &schema).await,
        &written,
        "inside the caller's transaction the batch is written, in order",
    );
    tx.rollback().await.expect("rollback");
    assert_eq!(
        store.counts().await.expect("counts").total(),
        0,
        "a rolled-back large enqueue_in must write nothing"
    );
    for id in [rolled[0].id, rolled[LARGE / 2].id, rolled[LARGE - 1].id] {
        assert!(
            store.job(id).await.expect("job").is_none(),
            "job {id} of a rolled-back large enqueue_in exists"
        );
    }

    // Committed: the business row and every job, with the right kinds.
    let batch = plain(LARGE, "committed");
    let mut tx = store.pool().begin().await.expect("begin");
    tx.execute(insert_order.as_str()).await.expect("order");
    let committed = enqueue_in(&mut tx, &store, batch.clone())
        .await
        .expect("enqueue_in of a large batch");
    tx.commit().await.expect("commit");
    let expected = expected_rows(&batch, &committed);
    assert_same_rows(
        &rows(&mut conn, &schema).await,
        &expected,
        "a committed large enqueue_in writes every job, each result the id of its input",
    );
    assert_eq!(
        count(&mut conn, &schema, "state = 'available'").await,
        LARGE as i64,
        "every committed job, due now, is available"
    );
    let orders: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\".orders", schema.name))
            .fetch_one(&mut conn)
            .await
            .expect("counting orders");
    assert_eq!(
        orders, 1,
        "the committed business row, and not the rolled-back one"
    );
    for (i, e) in committed.iter().enumerate().step_by(97) {
        let r = store
            .job(e.id)
            .await
            .expect("job")
            .expect("a committed job");
        assert_eq!(r.kind, format!("committed{i}"));
    }

    // Outside any transaction: the batch commits by itself.
    let batch = plain(LARGE, "autocommit");
    let mut pooled = store.pool().acquire().await.expect("a pooled connection");
    let own = enqueue_in(&mut pooled, &store, batch.clone())
        .await
        .expect("enqueue_in outside a transaction");
    drop(pooled);
    let mut all = expected;
    all.extend(expected_rows(&batch, &own));
    assert_same_rows(
        &rows(&mut conn, &schema).await,
        &all,
        "a large enqueue_in outside a transaction commits by itself",
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_the_server_refuses_is_invalid_and_writes_nothing() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;

    // What the server refuses, the SQLSTATE it answers, and the batch.
    let refusals: Vec<(&str, &str, Vec<NewJob>)> = vec![
        ("jsonb refuses the last payload", "22P05", {
            let mut batch = plain(1_000, "k");
            batch.push(NewJob::new("bad", JSONB_REFUSES));
            batch
        }),
        (
            "jsonb refuses the first payload of over a megabyte",
            "22P05",
            {
                // The server refuses while the rest of the batch still streams.
                let mut batch = vec![NewJob::new("bad", JSONB_REFUSES)];
                batch.extend((0..1_000).map(|i| {
                    NewJob::new(
                        format!("big{i}"),
                        json!({ "pad": "y".repeat(2_000) }).to_string(),
                    )
                }));
                batch
            },
        ),
        ("text refuses a NUL in the last kind", "22021", {
            let mut batch = plain(1_000, "k");
            batch.push(NewJob::new("nul\0kind", "{}"));
            batch
        }),
    ];
    for (what, code, batch) in &refusals {
        match store.enqueue(batch.clone()).await {
            Err(StoreError::Invalid { message }) => assert_refused_for(&message, code, what),
            other => panic!("a large batch where {what} should be Invalid, got {other:?}"),
        }
        assert_eq!(
            store.counts().await.expect("counts").total(),
            0,
            "a refused large batch ({what}) must write nothing"
        );
    }
    // Every pooled connection is still usable (a failed COPY left none
    // mid-protocol): more concurrent batches than the pool has connections.
    let mut batches = tokio::task::JoinSet::new();
    for b in 0..6 {
        let store = store.clone();
        batches.spawn(async move { store.enqueue(plain(600, &format!("after{b}-"))).await });
    }
    while let Some(result) = batches.join_next().await {
        result
            .expect("an enqueue task panicked")
            .expect("a large batch after refused ones");
    }
    assert_eq!(store.counts().await.expect("counts").total(), 3_600);

    // In the caller's transaction: refused, and the transaction goes on.
    let mut tx = store.pool().begin().await.expect("begin");
    let first = enqueue_in(&mut tx, &store, vec![NewJob::new("first", "{}")])
        .await
        .expect("a good enqueue");
    for (what, code, batch) in refusals {
        match enqueue_in(&mut tx, &store, batch).await {
            Err(StoreError::Invalid { message }) => assert_refused_for(&message, code, what),
            other => {
                panic!("enqueue_in of a large batch where {what} should be Invalid, got {other:?}")
            }
        }
    }
    let good = plain(LARGE, "good");
    let second = enqueue_in(&mut tx, &store, good.clone())
        .await
        .expect("the caller's transaction is still usable after a refused large batch");
    tx.commit().await.expect("commit");
    assert!(store.job(first[0].id).await.expect("job").is_some());
    for (job, e) in good.iter().zip(&second).step_by(101) {
        let r = store
            .job(e.id)
            .await
            .expect("job")
            .expect("a committed job");
        assert_eq!(r.kind, job.kind);
    }
    assert_eq!(
        store.counts().await.expect("counts").total(),
        3_600 + 1 + LARGE as u64,
        "only the good batches of the caller's transaction are written"
    );
    store.close().await;
}

/// Asserts an `Invalid` answer is the server's refusal of the bad value
/// (its SQLSTATE), not some other failure of the batch.
fn assert_refused_for(message: &str, code: &str, what: &str) {
    assert!(
        message.contains(&format!("SQLSTATE {code}")),
        "a large batch where {what} should be refused with SQLSTATE {code}, got: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_wakes_a_worker_of_another_store() {
    let schema = TestSchema::new().await;
    let mut conn = schema.raw().await;
    let worker = migrated(&schema).await;
    let other = schema.connect().await;
    listening(&worker, &schema, &mut conn).await;

    // By Store::enqueue, every job due now.
    let started = Instant::now();
    let ((), ()) = tokio::join!(worker.wait_for_work(LONG_WAIT), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        other
            .enqueue(plain(LARGE, "due"))
            .await
            .expect("enqueue of a large batch");
    });
    let waited = started.elapsed();
    assert!(
        waited < PROMPT,
        "a large batch enqueued by another store should wake the waiter at once, took {waited:?}"
    );
    listening(&worker, &schema, &mut conn).await;

    // By enqueue_in, only the last job due now: announced at the commit.
    let waiting = waiter(&worker);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut batch: Vec<NewJob> = plain(LARGE, "later")
        .into_iter()
        .map(|j| j.delay(HOUR))
        .collect();
    batch.push(NewJob::new("due-last", "{}").queue("elsewhere"));
    let mut caller = schema.raw().await;
    let mut tx = caller.begin().await.expect("begin");
    enqueue_in(&mut tx, &other, batch)
        .await
        .expect("enqueue_in of a large batch");
    assert_woken_by_commit(
        waiting,
        tx,
        Duration::from_millis(500),
        "a large batch whose last job is due",
    )
    .await;
    other.close().await;
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_times_its_jobs_on_the_database_clock() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let mut conn = schema.raw().await;
    let batch: Vec<NewJob> = (0..1_500)
        .map(|i| match i % 5 {
            0 => NewJob::new("hour", "{}").delay(HOUR),
            1 => NewJob::new("now", "{}"),
            2 => NewJob::new("zero", "{}").delay(Duration::ZERO),
            3 => NewJob::new("micro", "{}").delay(Duration::from_micros(1)),
            _ => NewJob::new("max", "{}").delay(Duration::MAX),
        })
        .collect();
    let db_now = "SELECT now()";
    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(db_now)
        .fetch_one(&mut conn)
        .await
        .expect("the database's now");
    let out = store.enqueue(batch).await.expect("enqueue");
    let after: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(db_now)
        .fetch_one(&mut conn)
        .await
        .expect("the database's now");
    assert_eq!(out.len(), 1_500);

    for (filter, rule) in [
        (
            "kind = 'hour' AND (run_at <> created_at + interval '1 hour' OR state <> 'scheduled')",
            "a delay of an hour: scheduled at created_at + 1 h, to the microsecond",
        ),
        (
            "kind IN ('now', 'zero') AND (run_at <> created_at OR state <> 'available')",
            "no delay or a zero one: available, run_at = created_at exactly",
        ),
        (
            "kind = 'micro' AND (run_at <> created_at + interval '1 microsecond' \
             OR state <> 'scheduled')",
            "a delay of 1 µs: scheduled at created_at + 1 µs",
        ),
        (
            "kind = 'max' AND (run_at <> '9999-12-31 23:59:59.999999+00'::timestamptz \
             OR state <> 'scheduled')",
            "Duration::MAX: scheduled at the latest time the store writes",
        ),
    ] {
        let wrong = count(&mut conn, &schema, filter).await;
        assert_eq!(
            wrong, 0,
            "{wrong} jobs of a large batch break the rule: {rule}"
        );
    }
    let (created, distinct): (chrono::DateTime<chrono::Utc>, i64) = sqlx::query_as(&format!(
        "SELECT min(created_at), count(DISTINCT created_at) FROM \"{}\".jobs",
        schema.name
    ))
    .fetch_one(&mut conn)
    .await
    .expect("reading created_at");
    assert_eq!(
        distinct, 1,
        "one batch, one transaction: one created_at (the transaction's now())"
    );
    assert!(
        before <= created && created <= after,
        "created_at {created} should be the database's now, between {before} and {after}"
    );
    let c = store.counts().await.expect("counts");
    assert_eq!((c.scheduled, c.available), (900, 600));

    // Only delayed jobs (nothing to announce): still one transaction, so
    // the now() the delays count from is the rows' created_at.
    let delayed: Vec<NewJob> = (0..1_000)
        .map(|i| NewJob::new("later", "{}").delay(HOUR * (1 + i % 3)))
        .collect();
    store.enqueue(delayed).await.expect("enqueue");
    let wrong = count(
        &mut conn,
        &schema,
        "kind = 'later' AND (run_at - created_at NOT IN \
         (interval '1 hour', interval '2 hours', interval '3 hours') OR state <> 'scheduled')",
    )
    .await;
    assert_eq!(
        wrong, 0,
        "{wrong} jobs of a large batch of delayed jobs are not due exactly their delay after \
         their created_at"
    );
    store.close().await;
}

/// The same jobs written by one large batch and by batches too small to be
/// copied give the same rows, every column compared (ids, `created_at` and
/// a delayed `run_at` aside: those are compared relative to the row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_writes_the_rows_small_batches_write() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let mut conn = schema.raw().await;
    let future = chrono::Utc::now() + chrono::TimeDelta::hours(3);
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(3);
    let jobs: Vec<NewJob> = (0..1_000_i64)
        .map(|i| {
            let payload = match i % 6 {
                0 => json!({ "i": i, "t": "tab\t nl\n bs\\ q\" naïve ✓ 😀" }).to_string(),
                1 => "null".to_string(),
                2 => json!([i, 2.5, -3, null, "s"]).to_string(),
                3 => r#" {"b":1, "a":[ {} , [] ], "u":"\u00e9\u2713"} "#.to_string(),
                4 => format!("{}", i * -13),
                // Some large: the batch passes a megabyte.
                _ => json!({ "big": "z".repeat(8_000), "i": i }).to_string(),
            };
            let priority = i16::try_from(i % 7).expect("small") - 3;
            let job = NewJob::new(format!("k{i}"), payload)
                .queue(if i % 2 == 0 { "even" } else { "odd" })
                .priority(if i % 50 == 0 { i16::MIN } else { priority })
                .max_attempts(u32::try_from(1 + i % 30).expect("small"));
            let job = match i % 4 {
                0 => job.timeout(Duration::from_millis(u64::try_from(1 + i).expect("small"))),
                1 => job.timeout(Duration::from_nanos(1)),
                _ => job,
            };
            // Absolute times are compared as they are; delays relative to
            // created_at (one batch's now is not another's).
            match i % 6 {
                0 => job.run_at(future + chrono::TimeDelta::microseconds(i * 1_001)),
                1 => job.run_at(past - chrono::TimeDelta::microseconds(i * 999)),
                2 => job.delay(Duration::from_micros(
                    u64::try_from(1 + i * 7).expect("small"),
                )),
                3 => job.delay(Duration::MAX),
                4 => job.delay(Duration::ZERO),
                _ => job,
            }
        })
        .collect();

    let copied = store.enqueue(jobs.clone()).await.expect("one large batch");
    let mut inserted = Vec::new();
    for chunk in jobs.chunks(250) {
        inserted.extend(store.enqueue(chunk.to_vec()).await.expect("a small batch"));
    }
    let read = format!(
        "SELECT (to_jsonb(j) - 'id' - 'created_at' - 'run_at')::text,
             CASE WHEN run_at = created_at THEN 'created_at'
                  WHEN run_at - created_at BETWEEN interval '0' AND interval '1 hour'
                      THEN 'created_at + ' || (run_at - created_at)::text
                  ELSE run_at::text END
         FROM \"{}\".jobs j WHERE id = ANY($1) ORDER BY id",
        schema.name
    );
    let rows_of = async |conn: &mut PgConnection, out: &[Enqueued]| -> Vec<(String, String)> {
        let ids: Vec<i64> = out.iter().map(|e| e.id.0).collect();
        sqlx::query_as(&read)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await
            .expect("reading the rows")
    };
    let by_copy = rows_of(&mut conn, &copied).await;
    let by_insert = rows_of(&mut conn, &inserted).await;
    assert_eq!(
        by_copy.len(),
        jobs.len(),
        "every job of the large batch is written"
    );
    assert_eq!(
        by_insert.len(),
        jobs.len(),
        "every job of the small batches is written"
    );
    for (i, (c, s)) in by_copy.iter().zip(&by_insert).enumerate() {
        assert_eq!(
            c, s,
            "job {i} (kind k{i}): the large batch wrote a row (left) unlike the small batches' \
             (right)"
        );
    }
    let ids = |out: &[Enqueued]| out.iter().map(|e| e.id).collect::<Vec<JobId>>();
    assert!(
        ids(&copied).windows(2).all(|w| w[0] < w[1]),
        "a large batch's ids increase in the batch's order"
    );
    store.close().await;
}

/// The contract's rule, on the rows written: a job is scheduled if and
/// only if the `run_at` written is after the transaction's `now()`. A
/// `run_at` given less than a microsecond after `now()` is written as
/// `now()` itself (PostgreSQL keeps microseconds), so the job is available,
/// as the `INSERT` of a small batch writes it. (The first COPY path judged
/// the state before cutting the time to microseconds and failed this when
/// `enqueue_in` still used `COPY`; it no longer does, and the unit test
/// `state_and_run_at_are_judged_as_stored` in `src/ops/copy.rs` keeps the
/// rule for `COPY`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_at_within_a_microsecond_after_now_is_written_available_as_by_insert() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let mut tx = store.pool().begin().await.expect("begin");
    let db_now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await
        .expect("the transaction's now()");
    let batch = |n: usize, prefix: &str| -> Vec<NewJob> {
        (0..n)
            .map(|i| {
                let at = match i % 3 {
                    0 => db_now + chrono::TimeDelta::nanoseconds(500),
                    1 => db_now,
                    _ => db_now + chrono::TimeDelta::microseconds(1),
                };
                NewJob::new(format!("{prefix}{}", i % 3), "{}").run_at(at)
            })
            .collect()
    };
    enqueue_in(&mut tx, &store, batch(LARGE, "copied"))
        .await
        .expect("a large batch");
    enqueue_in(&mut tx, &store, batch(30, "inserted"))
        .await
        .expect("a small batch");
    let wrong: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT DISTINCT kind, state, run_at::text FROM \"{}\".jobs
         WHERE (state = 'scheduled') <> (run_at > now()) ORDER BY kind",
        schema.name
    ))
    .fetch_all(&mut *tx)
    .await
    .expect("reading the jobs");
    assert!(
        wrong.is_empty(),
        "a job is scheduled if and only if the run_at written is after now() ({db_now}); these \
         (kind, state, run_at) break it: {wrong:?}"
    );
    tx.rollback().await.expect("rollback");
    store.close().await;
}
