//! Upgrading a database made by an older binary: its jobs, their states and
//! the id counter survive the migrations that rebuild the jobs table.

use sqlx::{Connection as _, Executor as _, SqliteConnection};
use steward_core::store::{
    ClaimRequest, JobId, JobState, NewJob, QueueClaim, Store, StoreError, UniqueScope,
};
use steward_store_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};

/// Builds the file a version-2 binary would have left: migrations 1 and 2
/// applied and recorded, four jobs inserted, the newest one pruned.
async fn version_2_database(path: &str) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}?mode=rwc"))
        .await
        .unwrap();
    conn.execute(include_str!("../migrations/0001_jobs.sql"))
        .await
        .unwrap();
    conn.execute(include_str!("../migrations/0002_leaders.sql"))
        .await
        .unwrap();
    conn.execute(
        "CREATE TABLE steward_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             applied_at INTEGER NOT NULL) STRICT;
         INSERT INTO steward_schema VALUES (1, 'jobs', 0), (2, 'leaders', 0);
         INSERT INTO steward_jobs (kind, queue, payload, priority, state, max_attempts, run_at,
             created_at, finished_at, unique_key, unique_scope, unique_held)
         VALUES ('a', 'default', '{\"n\":1}', 0, 'available', 3, 0, 0, NULL, NULL, NULL, NULL),
                ('b', 'default', '{}', 0, 'completed', 3, 0, 0, 1, NULL, NULL, NULL),
                ('c', 'default', '{}', 0, 'available', 3, 0, 0, NULL, 'k', 'queued', 'k'),
                ('d', 'default', '{}', 0, 'completed', 3, 0, 0, 1, NULL, NULL, NULL);
         DELETE FROM steward_jobs WHERE id = 4;",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_version_2_database_keeps_its_jobs_keys_and_ids_after_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let path = path.to_str().unwrap();
    version_2_database(path).await;

    let store = SqliteStore::open(path, SqliteOptions::default())
        .await
        .unwrap();
    // Not usable before the upgrade ...
    let err = store
        .enqueue(vec![NewJob::new("early", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotMigrated { .. }), "{err}");
    store.migrate().await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM steward_schema")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);

    // ... and after it, every job is there as it was.
    let a = store.job(JobId(1)).await.unwrap().unwrap();
    assert_eq!((a.kind.as_str(), a.payload.as_str()), ("a", "{\"n\":1}"));
    assert_eq!(a.state, JobState::Available);
    let b = store.job(JobId(2)).await.unwrap().unwrap();
    assert_eq!(b.state, JobState::Completed);
    assert!(store.job(JobId(4)).await.unwrap().is_none());

    // The counter continued past the pruned job: id 4 is not reused.
    let fresh = store.enqueue(vec![NewJob::new("e", "{}")]).await.unwrap();
    assert_eq!(fresh[0].id, JobId(5));

    // The held unique key is still enforced.
    let again = store
        .enqueue(vec![
            NewJob::new("c", "{}").unique("k", UniqueScope::Queued),
        ])
        .await
        .unwrap();
    assert!(again[0].duplicate);
    assert_eq!(again[0].id, JobId(3));

    // The claim still finds due jobs through the rebuilt index, in order.
    let claimed = store
        .claim(ClaimRequest {
            worker: "w".into(),
            queues: vec![QueueClaim {
                queue: "default".into(),
                limit: 10,
            }],
            lease: std::time::Duration::from_secs(30),
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|j| j.lease.id.0).collect();
    assert_eq!(ids, vec![1, 3, 5]);
    store.close().await;
}
