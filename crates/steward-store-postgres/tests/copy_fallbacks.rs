//! Where large batches do not go by `COPY` (`src/ops/copy.rs`): a role that
//! may not draw ids from the sequence, and a caller's own transaction
//! (`enqueue_in`), whose connection a cancelled `COPY` would wreck.

mod common;

use std::time::Duration;

use common::TestSchema;
use sqlx::{Connection as _, Executor as _};
use steward_core::store::{NewJob, Store};
use steward_store_postgres::{PostgresOptions, PostgresStore, enqueue_in};

fn plain(n: usize, prefix: &str) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::new(format!("{prefix}{i}"), format!("{{\"i\":{i}}}")))
        .collect()
}

/// A role granted what the SQL function's docs list for writers (schema
/// usage, the jobs table) but not `USAGE` on the id sequence, which drawing
/// ids for `COPY` needs and an `INSERT` does not: large batches still
/// enqueue, by `INSERT`, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_draw_ids_enqueues_large_batches_by_insert() {
    let schema = TestSchema::new().await;
    let owner = schema.connect().await;
    owner.migrate().await.expect("migrate");
    let role = format!("{}_w", schema.name);
    // A password, though this machine trusts loopback: a cluster set up by
    // `.ci/run` trusts only `postgres` there.
    let password = format!("{:016x}", rand::random::<u64>());
    let s = &schema.name;
    let mut admin = schema.raw().await;
    admin
        .execute(
            format!(
                "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}';
                 GRANT USAGE ON SCHEMA \"{s}\" TO \"{role}\";
                 GRANT SELECT, INSERT, UPDATE ON \"{s}\".jobs, \"{s}\".schema_migrations
                     TO \"{role}\";"
            )
            .as_str(),
        )
        .await
        .expect("creating the restricted role");
    let base = common::url();
    let (_, at) = base.split_once('@').expect("the test URL names a user");
    let url = format!("postgres://{role}:{password}@{at}");
    let writer = PostgresStore::connect(
        &url,
        PostgresOptions {
            pool_size: 2,
            ..schema.options()
        },
    )
    .await
    .expect("connecting as the restricted role");
    let may_draw: bool = sqlx::query_scalar(&format!(
        "SELECT has_sequence_privilege(pg_get_serial_sequence('\"{s}\".jobs', 'id'), 'USAGE')"
    ))
    .fetch_one(writer.pool())
    .await
    .expect("asking for the privilege");
    assert!(
        !may_draw,
        "the test needs a role without USAGE on the sequence"
    );

    let jobs = plain(1_200, "r");
    let out = writer.enqueue(jobs.clone()).await.expect("a large enqueue");
    assert_eq!(out.len(), jobs.len());
    assert!(
        out.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase in the batch's order"
    );
    for i in [0, 599, 1_199] {
        let record = owner.job(out[i].id).await.expect("job").expect("written");
        assert_eq!(record.kind, format!("r{i}"), "result {i} is job {i}");
    }
    assert_eq!(owner.counts().await.expect("counts").available, 1_200);

    writer.close().await;
    owner.close().await;
    admin
        .execute(format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";").as_str())
        .await
        .expect("dropping the role");
}

/// A caller who gives up on `enqueue_in` of a large batch half-way (a
/// timeout, here while another session's lock holds the insert up) keeps a
/// working connection and transaction: their own writes before it commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_large_enqueue_in_leaves_the_callers_transaction_usable() {
    let schema = TestSchema::new().await;
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    let s = &schema.name;
    sqlx::query(&format!(
        "CREATE TABLE \"{s}\".orders (id bigint PRIMARY KEY)"
    ))
    .execute(store.pool())
    .await
    .expect("the business table");

    let mut locker = schema.raw().await;
    let mut lock = locker.begin().await.expect("begin");
    sqlx::query(&format!("LOCK TABLE \"{s}\".jobs IN SHARE MODE"))
        .execute(&mut *lock)
        .await
        .expect("locking the jobs table against inserts");

    let mut caller = schema.raw().await;
    let mut tx = caller.begin().await.expect("begin");
    sqlx::query(&format!("INSERT INTO \"{s}\".orders (id) VALUES (1)"))
        .execute(&mut *tx)
        .await
        .expect("the caller's own write");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(500),
        enqueue_in(&mut tx, &store, plain(600, "c")),
    )
    .await;
    assert!(gave_up.is_err(), "the insert should be held up by the lock");
    lock.rollback().await.expect("releasing the lock");

    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{s}\".orders"))
        .fetch_one(&mut *tx)
        .await
        .expect("the caller's transaction still answers");
    assert_eq!(n, 1);
    let later = enqueue_in(&mut tx, &store, plain(600, "d"))
        .await
        .expect("and still enqueues");
    tx.commit().await.expect("and commits");
    assert_eq!(
        store.counts().await.expect("counts").available,
        600,
        "the cancelled batch left nothing, the later one all"
    );
    let first = store.job(later[0].id).await.expect("job").expect("written");
    assert_eq!(first.kind, "d0");
    store.close().await;
}
