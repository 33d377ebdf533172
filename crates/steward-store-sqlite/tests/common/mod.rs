//! Helpers shared by the integration tests: a store on a fresh file in a
//! temp dir, and short-hands for claims.
#![allow(dead_code)]

pub mod faulty;

use std::time::Duration;

use steward_core::store::{ClaimRequest, ClaimedJob, QueueClaim, Store};
use steward_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A migrated store on `jobs.db` in its own temp dir (kept alive with it).
pub struct TestStore {
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TestStore {
    pub fn path(&self) -> String {
        self.dir.path().join("jobs.db").display().to_string()
    }
}

pub async fn open() -> TestStore {
    open_with(SqliteOptions::default()).await
}

pub async fn open_with(options: SqliteOptions) -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"), options)
        .await
        .expect("open store");
    store.migrate().await.expect("migrate");
    TestStore { store, dir }
}

pub fn request(queue: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: "test-worker".into(),
        queues: vec![QueueClaim {
            queue: queue.into(),
            limit,
        }],
        lease: Duration::from_secs(30),
        max_suspects: u32::MAX,
        kinds: None,
    }
}

pub async fn claim(store: &SqliteStore, queue: &str, limit: u32) -> Vec<ClaimedJob> {
    store.claim(request(queue, limit)).await.expect("claim")
}
