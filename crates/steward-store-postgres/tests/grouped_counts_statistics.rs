//! `grouped_counts` on PostgreSQL: the schema keeps ndistinct statistics on
//! (queue, kind, state), so the planner knows the groups are few and hashes
//! them instead of sorting every row (a sort spilled to disk at 1,000,000
//! jobs: docs/performance.md). Nothing on the write path changes: extended
//! statistics are only read and rebuilt by ANALYZE.

mod common;

use common::TestSchema;
use steward_core::store::Store;

#[tokio::test]
async fn the_schema_has_ndistinct_statistics_on_queue_kind_and_state() {
    let schema = TestSchema::new().await;
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text
           FROM pg_statistic_ext s
           JOIN pg_namespace n ON n.oid = s.stxnamespace
           JOIN pg_class c ON c.oid = s.stxrelid
           JOIN LATERAL unnest(s.stxkeys) AS k(attnum) ON true
           JOIN pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = k.attnum
          WHERE n.nspname = $1 AND c.relname = 'jobs' AND 'd' = ANY(s.stxkind)
          ORDER BY a.attname",
    )
    .bind(&schema.name)
    .fetch_all(&mut schema.raw().await)
    .await
    .expect("reading the statistics objects");
    assert_eq!(columns, ["kind", "queue", "state"]);
    store.close().await;
}
