//! Vacuum after a drain (`src/vacuum.rs`): once `vacuum_after` jobs have
//! been claimed and a claim finds every queue it asks drained (each comes
//! back with fewer jobs than asked), the store vacuums the jobs
//! table, which removes the claimed jobs' dead entries from the claim index.

mod common;

use std::time::{Duration, Instant};

use common::TestSchema;
use sqlx::PgConnection;
use steward_core::store::{ClaimRequest, NewJob, QueueClaim, Store};
use steward_store_postgres::{PostgresOptions, PostgresStore};

const LEASE: Duration = Duration::from_secs(600);

async fn store(schema: &TestSchema, vacuum_after: Option<u64>) -> PostgresStore {
    let options = PostgresOptions {
        vacuum_after,
        ..schema.options()
    };
    let store = PostgresStore::connect(&schema.url, options)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    // Autovacuum off for this table: one running at the wrong moment would
    // make the store's `SKIP_LOCKED` vacuum skip (no count to see).
    sqlx::query(&format!(
        "ALTER TABLE \"{}\".jobs SET (autovacuum_enabled = false)",
        schema.name
    ))
    .execute(store.pool())
    .await
    .expect("turning autovacuum off for the test table");
    store
}

async fn claim(store: &PostgresStore, limit: u32) -> usize {
    claim_queues(store, &[("default", limit)]).await
}

async fn claim_queues(store: &PostgresStore, queues: &[(&str, u32)]) -> usize {
    store
        .claim(ClaimRequest {
            worker: "vacuum-test".into(),
            queues: queues
                .iter()
                .map(|(queue, limit)| QueueClaim {
                    queue: (*queue).into(),
                    limit: *limit,
                })
                .collect(),
            lease: LEASE,
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .expect("claim")
        .len()
}

/// Waits (up to 30 s) until the jobs table has been vacuumed by hand more
/// than `before` times.
async fn await_vacuum(conn: &mut PgConnection, schema: &str, before: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while vacuums(conn, schema).await == before {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many times the jobs table was vacuumed by hand (not autovacuum).
async fn vacuums(conn: &mut PgConnection, schema: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'",
    )
    .bind(schema)
    .fetch_one(conn)
    .await
    .expect("the jobs table's statistics")
}

/// Index pages a one-job claim reads from `jobs_claim`, from its plan.
async fn claim_index_pages(conn: &mut PgConnection, schema: &str) -> i64 {
    let plan: serde_json::Value = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
         SELECT id FROM \"{schema}\".jobs
         WHERE state IN ('scheduled', 'available', 'retryable') AND queue = 'default'
             AND run_at <= now()
         ORDER BY priority, run_at, id LIMIT 1"
    ))
    .fetch_one(conn)
    .await
    .expect("explain");
    fn find(node: &serde_json::Value) -> Option<i64> {
        if node["Index Name"] == "jobs_claim" {
            return Some(
                node["Shared Hit Blocks"].as_i64().unwrap_or(0)
                    + node["Shared Read Blocks"].as_i64().unwrap_or(0),
            );
        }
        node["Plans"].as_array()?.iter().find_map(find)
    }
    find(&plan[0]["Plan"]).expect("the claim's plan reads the jobs_claim index")
}

async fn enqueue(store: &PostgresStore, n: usize) {
    store
        .enqueue(
            (0..n)
                .map(|i| NewJob::new("k", format!("{{\"i\":{i}}}")))
                .collect(),
        )
        .await
        .expect("enqueue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_claim_after_enough_claimed_jobs_vacuums_and_clears_the_claim_index() {
    let schema = TestSchema::new().await;
    let store = store(&schema, Some(5_000)).await;
    let mut conn = schema.raw().await;
    let before = vacuums(&mut conn, &schema.name).await;

    // 6,000 jobs claimed in full batches: never short, so no vacuum yet.
    enqueue(&store, 6_001).await;
    for _ in 0..6 {
        assert_eq!(claim(&store, 1_000).await, 1_000);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        vacuums(&mut conn, &schema.name).await,
        before,
        "no vacuum while every claim comes back full"
    );
    let dirty = claim_index_pages(&mut conn, &schema.name).await;
    assert!(
        dirty > 20,
        "6,000 claimed jobs should leave dead entries that a claim walks ({dirty} pages)"
    );

    // The last job: the claim comes back short, the queue is drained, and
    // the vacuum starts.
    assert_eq!(claim(&store, 1_000).await, 1);
    await_vacuum(
        &mut conn,
        &schema.name,
        before,
        "a drained claim after 6,001 claimed jobs should vacuum the jobs table",
    )
    .await;
    enqueue(&store, 1).await;
    let clean = claim_index_pages(&mut conn, &schema.name).await;
    assert!(
        clean <= 3,
        "after the vacuum a claim should read the index's root and a leaf or two, not {clean} pages (was {dirty})"
    );
    assert_eq!(claim(&store, 10).await, 1, "the new job is claimed as ever");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_vacuum_below_the_threshold_or_when_turned_off() {
    let schema = TestSchema::new().await;
    let below = store(&schema, Some(1_000)).await;
    let off = store(&schema, None).await;
    let mut conn = schema.raw().await;
    let before = vacuums(&mut conn, &schema.name).await;

    enqueue(&below, 900).await;
    assert_eq!(claim(&below, 2_000).await, 900);
    assert_eq!(
        claim(&below, 2_000).await,
        0,
        "drained, but below 1,000 claimed"
    );
    enqueue(&off, 3_000).await;
    assert_eq!(claim(&off, 5_000).await, 3_000);
    assert_eq!(claim(&off, 5_000).await, 0, "drained, but vacuum is off");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(vacuums(&mut conn, &schema.name).await, before);

    // The store below the threshold crosses it with a drained claim.
    enqueue(&below, 200).await;
    assert_eq!(claim(&below, 1_000).await, 200);
    await_vacuum(
        &mut conn,
        &schema.name,
        before,
        "1,100 claimed jobs and a drained claim should vacuum",
    )
    .await;
    // Nothing else changed: pruning and counts work on the vacuumed table.
    let counts = below.counts().await.expect("counts");
    assert_eq!(counts.running, 4_100);
    below
        .prune(Duration::ZERO, Duration::ZERO)
        .await
        .expect("prune after a vacuum");
    below.close().await;
    off.close().await;
}

/// A worker claims all its queues in one request: while one is busy and
/// another idle every claim comes back short, and that is no drain; nor is
/// a claim that gets all it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_queue_beside_an_idle_one_is_not_a_drain() {
    let schema = TestSchema::new().await;
    let store = store(&schema, Some(200)).await;
    let mut conn = schema.raw().await;
    let before = vacuums(&mut conn, &schema.name).await;
    enqueue(&store, 2_100).await;
    assert_eq!(claim(&store, 100).await, 100, "a full claim");
    for round in 0..20 {
        let got = claim_queues(&store, &[("default", 100), ("idle", 100)]).await;
        assert_eq!(got, 100, "round {round}: the busy queue's 100");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        vacuums(&mut conn, &schema.name).await,
        before,
        "short claims of a busy queue beside an idle one should not vacuum"
    );
    assert_eq!(
        claim_queues(&store, &[("default", 100), ("idle", 100)]).await,
        0
    );
    await_vacuum(
        &mut conn,
        &schema.name,
        before,
        "a claim that finds both queues drained should vacuum",
    )
    .await;
    store.close().await;
}
