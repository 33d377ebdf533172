//! What is specific to the PostgreSQL store, beyond the shared contract:
//! schema placement, migrating from many nodes at once, version checks,
//! error mapping, and the caller's-transaction outbox.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TestSchema;
use sqlx::{Connection as _, Executor as _, PgConnection};
use steward_core::store::{
    ClaimRequest, ClaimedJob, Enqueued, JobState, NewJob, QueueClaim, Store, StoreError,
    UniqueScope,
};
use steward_store_postgres::{
    PostgresOptions, PostgresStore, SCHEMA_VERSION, complete_in, enqueue_in,
};

const LEASE: Duration = Duration::from_secs(600);

async fn migrated(schema: &TestSchema) -> PostgresStore {
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    store
}

async fn claim(store: &PostgresStore, queue: &str) -> Vec<ClaimedJob> {
    store
        .claim(ClaimRequest {
            worker: "pg-test".into(),
            queues: vec![QueueClaim {
                queue: queue.into(),
                limit: 10,
            }],
            lease: LEASE,
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .expect("claim")
}

/// Every relation, type and function outside the test schemas, by schema
/// and name (TOAST tables live in `pg_toast` whatever we do).
async fn objects_outside_test_schemas(conn: &mut PgConnection) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT LIKE 'steward\\_test\\_%' AND n.nspname NOT LIKE 'pg\\_toast%'
                 AND n.nspname NOT LIKE 'pg\\_temp%'
         UNION ALL
         SELECT n.nspname::text, t.typname::text FROM pg_type t
             JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname NOT LIKE 'steward\\_test\\_%' AND n.nspname NOT LIKE 'pg\\_toast%'
         UNION ALL
         SELECT n.nspname::text, p.proname::text FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname NOT LIKE 'steward\\_test\\_%'
         UNION ALL
         SELECT 'namespace', nspname::text FROM pg_namespace
             WHERE nspname NOT LIKE 'steward\\_test\\_%' AND nspname NOT LIKE 'pg\\_t%'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("listing catalog objects");
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_lives_in_the_configured_schema() {
    let schema = TestSchema::new().await;
    let mut conn = schema.raw().await;
    let before = objects_outside_test_schemas(&mut conn).await;

    let store = migrated(&schema).await;
    store
        .enqueue(vec![
            NewJob::new("k", "{}").unique("u", UniqueScope::Queued),
        ])
        .await
        .expect("enqueue");
    let after = objects_outside_test_schemas(&mut conn).await;
    let added: Vec<_> = after.difference(&before).collect();
    assert!(
        added.is_empty(),
        "migrate and use created objects outside schema {}: {added:?}",
        schema.name
    );

    let ours: BTreeSet<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1",
    )
    .bind(&schema.name)
    .fetch_all(&mut conn)
    .await
    .expect("listing the schema")
    .into_iter()
    .collect();
    for name in [
        "jobs",
        "jobs_pkey",
        "jobs_claim",
        "jobs_unique",
        "jobs_running",
        "schema_migrations",
    ] {
        assert!(
            ours.contains(name),
            "{name} should be in schema {}: {ours:?}",
            schema.name
        );
    }
    let options: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT c.reloptions::text[] FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = 'jobs'",
    )
    .bind(&schema.name)
    .fetch_one(&mut conn)
    .await
    .expect("reading the jobs table's options");
    assert_eq!(options, Some(vec!["fillfactor=80".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_from_many_nodes_migrate_once() {
    let schema = TestSchema::new().await;
    // Start from nothing at all, so the nodes also race to create the schema.
    let mut conn = schema.raw().await;
    conn.execute(format!("DROP SCHEMA \"{}\"", schema.name).as_str())
        .await
        .expect("dropping the empty schema");

    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(schema.connect().await);
    }
    let mut migrations = tokio::task::JoinSet::new();
    for store in stores.clone() {
        migrations.spawn(async move { store.migrate().await });
    }
    while let Some(result) = migrations.join_next().await {
        result
            .expect("a migrate task panicked")
            .unwrap_or_else(|e| panic!("a concurrent migrate failed: {e}"));
    }
    let versions: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT version FROM \"{}\".schema_migrations ORDER BY version",
        schema.name
    ))
    .fetch_all(&mut conn)
    .await
    .expect("reading the versions");
    assert_eq!(
        versions,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
        "each migration applied once"
    );
    // Every node can use the store.
    for store in &stores {
        store
            .enqueue(vec![NewJob::new("k", "{}")])
            .await
            .expect("enqueue");
    }
    assert_eq!(stores[0].counts().await.expect("counts").available, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_migrated_by_a_newer_binary_is_refused() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let mut conn = schema.raw().await;
    conn.execute(
        format!(
            "INSERT INTO \"{}\".schema_migrations (version, name) VALUES (999, 'future')",
            schema.name
        )
        .as_str(),
    )
    .await
    .expect("recording a future version");

    match PostgresStore::connect(&schema.url, schema.options()).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (999, SCHEMA_VERSION));
        }
        other => panic!("connect should refuse a newer schema, got {other:?}"),
    }
    match store.migrate().await {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("migrate should refuse a newer schema, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmigrated_schema_answers_not_migrated() {
    let schema = TestSchema::new().await;
    let store = schema.connect().await;
    match store.enqueue(vec![NewJob::new("k", "{}")]).await {
        Err(err @ StoreError::NotMigrated { .. }) => {
            // A library user reads this: it names the schema and the call
            // that creates it (found by a new-user trial).
            let text = err.to_string();
            assert!(text.contains(&format!("`{}`", schema.name)), "{text}");
            assert!(text.contains("migrate()"), "{text}");
        }
        other => panic!("enqueue before migrate should be NotMigrated, got {other:?}"),
    }
    match store.counts().await {
        Err(StoreError::NotMigrated { .. }) => {}
        other => panic!("counts before migrate should be NotMigrated, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schema_names_and_unreachable_servers_are_typed_errors() {
    let bad = PostgresOptions {
        schema: "jobs\"; DROP TABLE x; --".into(),
        ..PostgresOptions::default()
    };
    match PostgresStore::connect(&common::url(), bad).await {
        Err(StoreError::Invalid { .. }) => {}
        other => panic!("a bad schema name should be Invalid, got {other:?}"),
    }
    let options = PostgresOptions {
        acquire_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    // Port 1 on loopback: nothing listens there.
    match PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", options).await {
        Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_transient()),
        other => panic!("an unreachable server should be Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_commits_and_rolls_back_with_the_callers_transaction() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let orders = format!("\"{}\".orders", schema.name);
    sqlx::query(&format!("CREATE TABLE {orders} (id bigint PRIMARY KEY)"))
        .execute(store.pool())
        .await
        .expect("creating the business table");

    // Rolled back: neither the order nor its job, nor its unique key.
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query(&format!("INSERT INTO {orders} (id) VALUES (1)"))
        .execute(&mut *tx)
        .await
        .expect("order 1");
    let job = || {
        NewJob::new("ship", r#"{"order":1}"#)
            .queue("ship")
            .unique("order-1", UniqueScope::Active)
    };
    let ids = enqueue_in(&mut tx, &store, vec![job()])
        .await
        .expect("enqueue_in");
    assert!(!ids[0].duplicate);
    tx.rollback().await.expect("rollback");
    assert_eq!(store.job(ids[0].id).await.expect("job"), None);
    assert_eq!(store.counts().await.expect("counts").total(), 0);

    // Committed: both, and the job runs.
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query(&format!("INSERT INTO {orders} (id) VALUES (1)"))
        .execute(&mut *tx)
        .await
        .expect("order 1 again");
    let ids = enqueue_in(&mut tx, &store, vec![job()])
        .await
        .expect("enqueue_in");
    assert!(
        !ids[0].duplicate,
        "a rolled-back enqueue leaves no key behind"
    );
    // Until the caller commits, another node's enqueue of the same key
    // waits, then sees the committed holder.
    let other = schema.connect().await;
    let racing = tokio::spawn(async move { other.enqueue(vec![job()]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !racing.is_finished(),
        "the racing enqueue should wait for the caller's commit"
    );
    tx.commit().await.expect("commit");
    store.notify_enqueued();
    let raced = racing.await.expect("racing task").expect("racing enqueue");
    assert_eq!(
        raced,
        vec![Enqueued {
            id: ids[0].id,
            duplicate: true
        }]
    );
    let claimed = claim(&store, "ship").await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.id, ids[0].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enqueue_in_leaves_the_callers_transaction_usable() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let mut tx = store.pool().begin().await.expect("begin");
    let first = enqueue_in(&mut tx, &store, vec![NewJob::new("k", "{}")])
        .await
        .expect("a good enqueue");
    // Valid JSON that jsonb cannot hold (a NUL character): refused by the
    // server, inside enqueue_in's savepoint.
    match enqueue_in(&mut tx, &store, vec![NewJob::new("k", r#"{"a":"\u0000"}"#)]).await {
        Err(StoreError::Invalid { .. }) => {}
        other => panic!("a payload jsonb refuses should be Invalid, got {other:?}"),
    }
    let second = enqueue_in(&mut tx, &store, vec![NewJob::new("k", "{}")])
        .await
        .expect("the transaction is still usable");
    tx.commit().await.expect("commit");
    assert!(store.job(first[0].id).await.expect("job").is_some());
    assert!(store.job(second[0].id).await.expect("job").is_some());
    assert_eq!(store.counts().await.expect("counts").total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_in_is_fenced_and_commits_with_the_caller() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    store
        .enqueue(vec![NewJob::new("k", "{}").queue("q")])
        .await
        .expect("enqueue");
    let job = claim(&store, "q").await.remove(0);
    let id = job.lease.id;

    // A stale token is refused, and the caller's transaction goes on.
    let mut tx = store.pool().begin().await.expect("begin");
    let stale = steward_core::store::Lease {
        id,
        token: steward_core::store::LeaseToken(job.lease.token.0.wrapping_add(1)),
    };
    match complete_in(&mut tx, &store, stale).await {
        Err(StoreError::LeaseLost { id: lost }) => assert_eq!(lost, id),
        other => panic!("complete_in with a stale token should be LeaseLost, got {other:?}"),
    }
    // The real lease completes, but only if the caller commits.
    complete_in(&mut tx, &store, job.lease)
        .await
        .expect("complete_in");
    tx.rollback().await.expect("rollback");
    let r = store.job(id).await.expect("job").expect("exists");
    assert_eq!(r.state, JobState::Running, "rolled back: still running");

    let mut tx = store.pool().begin().await.expect("begin");
    complete_in(&mut tx, &store, job.lease)
        .await
        .expect("complete_in");
    tx.commit().await.expect("commit");
    let r = store.job(id).await.expect("job").expect("exists");
    assert_eq!(r.state, JobState::Completed);
    assert!(r.finished_at.is_some());

    // Completed once: a second completion is refused.
    let mut conn = store.pool().acquire().await.expect("acquire");
    let mut tx = conn.begin().await.expect("begin");
    match complete_in(&mut tx, &store, job.lease).await {
        Err(StoreError::LeaseLost { .. }) => {}
        other => panic!("a second complete_in should be LeaseLost, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_skips_rows_another_transaction_has_locked_instead_of_waiting() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let ids = store
        .enqueue(vec![
            NewJob::new("k", "{}").queue("q").priority(-1),
            NewJob::new("k", "{}").queue("q"),
        ])
        .await
        .expect("enqueue");
    // Another node's transaction holds the first job's row (as a claim in
    // flight, or an outbox completion, would).
    let mut other = schema.raw().await;
    let mut tx = other.begin().await.expect("begin");
    sqlx::query(&format!(
        "SELECT id FROM \"{}\".jobs WHERE id = $1 FOR UPDATE",
        schema.name
    ))
    .bind(ids[0].id.0)
    .fetch_one(&mut *tx)
    .await
    .expect("locking the first job");

    let claimed = tokio::time::timeout(Duration::from_secs(10), claim(&store, "q"))
        .await
        .expect("a claim must not wait for a locked row");
    let got: Vec<_> = claimed.iter().map(|c| c.lease.id).collect();
    assert_eq!(
        got,
        vec![ids[1].id],
        "the locked job is skipped, the next one taken"
    );
    tx.rollback().await.expect("rollback");
    let claimed = claim(&store, "q").await;
    assert_eq!(
        claimed[0].lease.id, ids[0].id,
        "once unlocked, it is claimable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_commit_is_reported_and_drop_schema_removes_the_store() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let setting = store
        .synchronous_commit()
        .await
        .expect("synchronous_commit");
    assert!(
        ["on", "off", "local", "remote_write", "remote_apply"].contains(&setting.as_str()),
        "unexpected synchronous_commit {setting:?}"
    );
    store
        .enqueue(vec![NewJob::new("k", "{}")])
        .await
        .expect("enqueue");

    store.drop_schema().await.expect("drop_schema");
    let mut conn = schema.raw().await;
    let left: Option<String> = sqlx::query_scalar("SELECT to_regnamespace($1)::text")
        .bind(&schema.name)
        .fetch_one(&mut conn)
        .await
        .expect("looking the schema up");
    assert_eq!(left, None, "schema {} should be gone", schema.name);
    match store.counts().await {
        Err(StoreError::NotMigrated { .. }) => {}
        other => panic!("a dropped store should answer NotMigrated, got {other:?}"),
    }
    store
        .drop_schema()
        .await
        .expect("dropping a schema that is gone does nothing");
}

/// An operator's retry takes back its job's released key only if no other
/// job holds it, and the check cannot see an enqueue of the key that is not
/// committed yet. That enqueue's commit then makes the retry's write of the
/// key a unique violation, which must not fail the retry: the job is
/// retried without its key, and the new job keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retry_racing_an_uncommitted_enqueue_of_its_key_runs_without_it() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let job = || {
        NewJob::new("sync", "{}")
            .queue("sync")
            .unique("sync-7", UniqueScope::Active)
    };
    let old = store.enqueue(vec![job()]).await.expect("enqueue")[0].id;
    let lease = claim(&store, "sync").await.remove(0).lease;
    store
        .finish(vec![steward_core::store::Finish {
            lease,
            outcome: steward_core::store::FinishOutcome::Completed,
        }])
        .await
        .expect("complete");

    let mut tx = store.pool().begin().await.expect("begin");
    let new = enqueue_in(&mut tx, &store, vec![job()])
        .await
        .expect("enqueue_in")[0];
    assert!(!new.duplicate, "the completed job let go of its key");
    let operator = schema.connect().await;
    let retrying = tokio::spawn(async move { operator.retry(old).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !retrying.is_finished(),
        "the retry's write of the key should wait for the enqueue's transaction"
    );
    tx.commit().await.expect("commit");

    let retried = retrying.await.expect("retry task");
    assert!(
        matches!(retried, Ok(true)),
        "a key taken meanwhile must not fail the retry, got {retried:?}"
    );
    let r = store.job(old).await.expect("job").expect("exists");
    assert_eq!(r.state, JobState::Available);
    assert_eq!(
        r.unique_key, None,
        "the new job holds the key, not the retried one"
    );
    let again = store.enqueue(vec![job()]).await.expect("enqueue");
    assert_eq!(
        again,
        vec![Enqueued {
            id: new.id,
            duplicate: true
        }]
    );
}
